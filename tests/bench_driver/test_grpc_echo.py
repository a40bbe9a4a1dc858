"""The grpc-echo peer speaks the protocol: one valid line, every item acked or timed, scenarios
without a ceiling skipped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.bench_driver.test_compare import compare

RUN = Path(__file__).resolve().parents[2] / "bench" / "peers" / "grpc_echo" / "run"


def run(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([str(RUN), *args], capture_output=True, text=True, timeout=60, check=True, env=env)
    result: dict[str, object] = compare.parse_line(done.stdout)
    return result


@pytest.mark.parametrize("workers", ["1", "2"])
def test_drain_acks_every_item(workers: str) -> None:
    result = run("--scenario", "drain", "--jobs", "700", "--workers", workers, "--concurrency", "64")
    assert result["system"] == "grpc-echo" and result["jobs"] == 700


def test_unary_reports_call_latency() -> None:
    result = run("--scenario", "enqueue_unary", "--jobs", "200", "--in-flight", "8", "--payload-bytes", "300")
    assert result["jobs"] == 200
    assert isinstance(result["latency_ms"], dict) and result["latency_ms"]["p50"] > 0


@pytest.mark.parametrize(
    ("scenario", "items"),
    [
        (("--scenario", "latency_idle", "--jobs", "30"), 30),
        (("--scenario", "latency_rate", "--rate", "200", "--duration", "0.5"), 100),
    ],
)
def test_the_relay_times_every_item_from_producer_to_worker(scenario: tuple[str, ...], items: int) -> None:
    result: dict[str, Any] = run(*scenario)

    assert result["jobs"] == items
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    # Reported for each side; CPU time is read in clock ticks (10 ms), which 30 jobs may not fill.
    assert result["cost"]["server_cpu_us_per_job"] >= 0 and result["cost"]["worker_cpu_us_per_job"] >= 0


def test_scenarios_without_a_ceiling_are_skipped() -> None:
    result = run("--scenario", "enqueue_batch", "--redis-url", "redis://127.0.0.1:1/0")
    assert "skipped" in result
    assert json.dumps(result)


@pytest.mark.parametrize(("processes", "pids"), [("1", 2), ("2", 3)])
def test_stub_client_drives_serve_processes_with_the_load_generator(
    bench_bin: Path, processes: str, pids: int
) -> None:
    env = {**os.environ, "JOBQ_BENCH_BIN": str(bench_bin)}
    args = ("--scenario", "enqueue_unary", "--client", "stub", "--processes", processes, "--jobs", "300")

    result: dict[str, Any] = run(*args, env=env)

    assert result["jobs"] == 300
    assert result["config"]["connections"] == 4 * int(processes)
    assert result["cost"]["server_cpu_us_per_job"] is not None
    assert result["cost"]["producer_cpu_us_per_job"] is not None
    assert result["extra"]["server_processes"] == pids  # the supervisor and its servers
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "max"}
