"""The benchmark's pure parts: percentiles, payload size, the suite, Redis counter deltas."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import pytest

from jobqueue_bench.config import SCENARIOS, BenchConfig
from jobqueue_bench.measure import latency_summary, process_cpu_seconds
from jobqueue_bench.producer import padding
from jobqueue_bench.redis_cost import RedisCounters
from jobqueue_bench.stats import WorkerStats
from jobqueue_bench.suite import default_suite


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
