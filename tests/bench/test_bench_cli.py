"""`jobq bench` run as a subprocess: the quick suite, and one measurement in the protocol's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from jobqueue_bench.config import LATENCY_SCENARIOS, SCENARIOS
from jobqueue_bench.processes import child_env
from tests.support import TestRedis

RUN_TIMEOUT_S = 110.0
COST_KEYS = {
    "redis_commands_per_job",
    "redis_script_calls_per_job",
    "redis_cpu_us_per_job",
    "server_cpu_us_per_job",
    "worker_cpu_us_per_job",
    "producer_cpu_us_per_job",
}
CONFIG_KEYS = {
    "jobs",
    "workers",
    "concurrency",
    "batch",
    "in_flight",
    "payload_bytes",
    "rate",
    "duration",
    "servers",
    "processes",
    "client",
    "connections",
    "idle_streams",
    "idle_seconds",
}
LATENCY_KEYS = {"p50", "p90", "p99", "max"}


def jobq_bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobqueue_cli", "bench", *args],
        capture_output=True,
        text=True,
        env=child_env(env or {}),
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def assert_protocol_result(result: dict[str, Any]) -> None:
    assert result["system"] == "jobqueue"
    assert result["scenario"] in SCENARIOS
    assert set(result["config"]) == CONFIG_KEYS
    assert result["jobs"] > 0
    assert result["seconds"] > 0
    assert result["jobs_per_second"] > 0
    assert set(result["cost"]) == COST_KEYS
    assert result["cost"]["redis_commands_per_job"] > 0
    assert result["cost"]["redis_cpu_us_per_job"] is not None
    assert isinstance(result["versions"], dict) and "jobqueue-server" in result["versions"]
    assert isinstance(result["notes"], str)
    assert result["extra"]["server_processes"] >= 1
    if result["scenario"] in LATENCY_SCENARIOS:
        assert set(result["latency_ms"]) == LATENCY_KEYS
    assert "error" not in result


def test_quick_suite_measures_every_scenario_and_writes_the_results_file(tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    run = jobq_bench("--quick", "--out", str(out))

    assert run.returncode == 0, run.stderr
    assert "jobs/s" in run.stdout  # the table
    document = json.loads(out.read_text())
    results = document["results"]
    assert {result["scenario"] for result in results} == set(SCENARIOS)
    for result in results:
        assert_protocol_result(result)
    sweep = {(r["config"]["payload_bytes"], r["config"]["workers"], r["config"]["concurrency"],
              r["config"]["servers"]) for r in results if r["scenario"] == "drain"}  # fmt: skip
    assert len(sweep) >= 8  # payload, workers, window and servers points, each measured once
    enqueues = [r for r in results if r["scenario"] in ("enqueue_unary", "enqueue_batch")]
    assert all(r["cost"]["producer_cpu_us_per_job"] is not None for r in enqueues)  # this process's own
    idle = next(r for r in results if r["scenario"] == "latency_idle")["idle"]
    assert idle["streams"] == 10
    assert {name: window["queues"] for name, window in idle["layouts"].items()} == {
        "shared": 64,
        "distinct": 640,
    }
    assert idle["layouts"]["shared"]["redis_commands_per_second"] >= 0 and isinstance(idle["released"], bool)
    assert document["machine"]["cpu_count"] >= 1
    assert document["versions"]["protobuf"]
    assert "bench" in document["command"]


async def test_one_drain_measurement_prints_one_protocol_line_and_cleans_up(
    test_redis: TestRedis, redis: Redis
) -> None:
    run = jobq_bench("--scenario", "drain", "--jobs", "500", "--redis-url", test_redis.url, "--json")

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert_protocol_result(result)
    assert result["scenario"] == "drain"
    assert result["jobs"] == 500
    assert result["config"]["jobs"] == 500
    assert result["latency_ms"] is None
    assert result["cost"]["worker_cpu_us_per_job"] is not None or sys.platform != "linux"
    assert await redis.keys("jqbench*") == []  # the keys it wrote on a given Redis are deleted
