"""The benchmark's pure parts: percentiles, payload size, the suite, Redis counter deltas."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jobqueue_bench.config import SCENARIOS, BenchConfig
from jobqueue_bench.cost import Readings
from jobqueue_bench.external import ToolFailed, command, parse
from jobqueue_bench.measure import latency_summary, process_cpu_seconds, process_tree
from jobqueue_bench.producer import padding
from jobqueue_bench.redis_cost import RedisCounters, RedisUsage
from jobqueue_bench.stats import WorkerStats
from jobqueue_bench.suite import default_suite
from jobqueue_bench.tools import ToolMissing


def test_latency_summary_uses_inclusive_quantiles() -> None:
    samples = [float(n) for n in range(1, 201)]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")

    assert latency_summary(samples) == {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": 200.0}
    assert latency_summary([3.0]) == {"p50": 3.0, "p90": 3.0, "p99": 3.0, "max": 3.0}
    assert latency_summary([]) == {}


@pytest.mark.parametrize("size", [100, 10 * 1024, 512 * 1024])
def test_payload_is_the_requested_size_as_compact_json(size: int) -> None:
    payload = {"t": time.time(), "pad": padding(size)}

    assert abs(len(json.dumps(payload, separators=(",", ":"))) - size) <= 2  # the float's digits vary


def test_default_suite_runs_each_scenario_and_each_sweep_point_once() -> None:
    suite = default_suite(quick=True)

    assert {config.scenario for config in suite} == set(SCENARIOS)
    assert len(suite) == len(set(suite))
    drains = [config for config in suite if config.scenario == "drain"]
    assert {config.payload_bytes for config in drains} == {100, 10 * 1024, 512 * 1024}
    assert {config.concurrency for config in drains} == {16, 64, 256, 1024}
    assert {config.servers for config in drains} == {1, 2}
    big = next(config for config in drains if config.payload_bytes == 512 * 1024)
    assert big.jobs < BenchConfig("drain", jobs=500).jobs  # fewer jobs for big payloads


def test_redis_usage_counts_every_command_but_our_info_reads() -> None:
    before = RedisCounters({"evalsha": 2, "hset": 10, "info": 4}, cpu_seconds=1.0)
    after = RedisCounters({"evalsha": 5, "hset": 40, "info": 6, "fcall": 1, "rpop": 3}, cpu_seconds=1.5)

    usage = after.since(before)

    assert usage.commands == 3 + 30 + 1 + 3
    assert usage.script_calls == 3 + 1
    assert usage.cpu_seconds == pytest.approx(0.5)


def test_worker_stats_combine_takes_the_earliest_start_and_the_latest_end() -> None:
    one = WorkerStats(count=2, first_start=10.0, last_end=12.0, latencies_ms=[1.0], final=True)
    two = WorkerStats(count=3, first_start=9.0, last_end=11.0, latencies_ms=[2.0], final=True)

    both = WorkerStats.combine([one, two])

    assert (both.count, both.first_start, both.last_end, both.latencies_ms) == (5, 9.0, 12.0, [1.0, 2.0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_cpu_seconds_reads_proc_stat() -> None:
    spent = process_cpu_seconds(os.getpid())

    assert spent is not None and spent > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_tree_finds_children_and_grandchildren() -> None:
    script = "sleep 60 & (sleep 60 & wait) & echo ready; wait"
    with subprocess.Popen(
        ["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 10
            while len(tree := process_tree(parent.pid)) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            # bash, its sleep, the subshell and the subshell's sleep
            assert tree[0] == parent.pid and len(tree) == 4
        finally:
            os.killpg(parent.pid, 9)


def test_stub_connections_default_to_four_per_server_process() -> None:
    config = BenchConfig("enqueue_unary", client="stub", processes=2)

    assert config.connection_count == 8
    assert config.document()["connections"] == 8
    assert "client=stub" in config.label() and "conns=8" in config.label() and "procs=2" in config.label()
    assert BenchConfig("enqueue_unary", client="stub", connections=3).connection_count == 3


def test_readings_divide_by_the_jobs_and_the_producer_by_its_own() -> None:
    readings = Readings(RedisUsage(commands=300, script_calls=30, cpu_seconds=0.03), 0.06, None, 0.5)

    cost = readings.per_job(300, producer_cpu_s=0.01, producer_jobs=100)
    assert cost.redis_commands_per_job == 1.0
    assert cost.redis_cpu_us_per_job == pytest.approx(100.0)
    assert cost.server_cpu_us_per_job == pytest.approx(200.0)
    assert cost.worker_cpu_us_per_job is None
    assert cost.producer_cpu_us_per_job == pytest.approx(100.0)  # 0.01 s over its 100 measured jobs
    assert readings.per_job(100).producer_cpu_us_per_job == pytest.approx(5000.0)  # this process's own


def test_outside_producers_commands_name_their_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("loadgen", "enqueue-load"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("JOBQ_BENCH_BIN", str(tmp_path))

    stub = command(BenchConfig("enqueue_unary", client="stub", processes=2, jobs=5000), "h:1", "q")
    go = command(BenchConfig("enqueue_unary", client="go", jobs=300), "h:1", "q")

    assert stub[0] == str(tmp_path / "loadgen")
    assert stub[stub.index("--connections") + 1] == "8" and stub[stub.index("--warmup") + 1] == "1s"
    assert go[go.index("--warmup") + 1] == "30"  # a small run warms up less
    assert "--latency" in go


def test_a_missing_producer_is_named_with_its_build_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOBQ_BENCH_BIN", str(tmp_path))

    with pytest.raises(ToolMissing, match="go build -C clients/go"):
        command(BenchConfig("enqueue_unary", client="go"), "h:1", "q")


def stub_line(**changes: Any) -> dict[str, Any]:
    line = {
        "calls": 100, "errors": {}, "seconds": 0.5, "loadgen_cpu_seconds": 0.01, "connections": 4,
        "latency_ms": {"p50": 1.23456, "p90": 2.0, "p99": 3.0, "max": 4.0}, "warmup_calls": 50,
    }  # fmt: skip
    return {**line, **changes}


def test_producer_lines_are_read_alike_and_failed_calls_fail_the_run() -> None:
    stub = parse("stub", stub_line())
    go = parse("go", {"jobs": 100, "errors": 0, "seconds": 0.5, "client_cpu_seconds": 0.02, "calls": 7})

    assert (stub.jobs, stub.cpu_seconds, stub.latency_ms) == (
        100,
        0.01,
        {**stub_line()["latency_ms"], "p50": 1.235},
    )
    assert (go.jobs, go.latency_ms) == (100, None)
    with pytest.raises(ToolFailed, match="UNAVAILABLE"):
        parse("stub", stub_line(errors={"UNAVAILABLE": 2}))
    with pytest.raises(ToolFailed, match="boom"):
        parse("node", {"jobs": 98, "errors": 2, "first_error": "boom", "seconds": 1, "client_cpu_seconds": 0})
