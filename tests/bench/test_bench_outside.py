"""`jobq bench --scenario enqueue_unary` through the outside producers: Go, TypeScript, a raw stub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.bench.test_bench_cli import assert_protocol_result, jobq_bench
from tests.support import TestRedis

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


def one_line(test_redis: TestRedis, bench_bin: Path, *args: str) -> dict[str, Any]:
    run = jobq_bench(
        "--scenario", "enqueue_unary", "--jobs", "200", "--redis-url", test_redis.url, "--json", *args,
        env={"JOBQ_BENCH_BIN": str(bench_bin)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    assert_protocol_result(result)
    return result


@pytest.mark.parametrize(("processes", "pids"), [("1", 1), ("2", 3)])
def test_the_stub_reports_its_own_cpu_and_every_server_process_is_read(
    test_redis: TestRedis, bench_bin: Path, processes: str, pids: int
) -> None:
    result = one_line(test_redis, bench_bin, "--client", "stub", "--processes", processes)

    assert result["jobs"] == 200
    assert (result["config"]["client"], result["config"]["processes"]) == ("stub", int(processes))
    assert result["config"]["connections"] == 4 * int(processes)
    assert result["cost"]["producer_cpu_us_per_job"] is not None
    # `jobq serve --processes 2` is a supervisor and two servers: all three are read.
    assert result["extra"]["server_processes"] == pids
    report = result["extra"]["producer_report"]
    assert result["extra"]["jobs_enqueued"] == report["calls"] + report["warmup_calls"]


def test_the_go_client_batches_and_reports_latency(test_redis: TestRedis, bench_bin: Path) -> None:
    result = one_line(test_redis, bench_bin, "--client", "go")

    assert result["jobs"] == 200
    assert result["cost"]["producer_cpu_us_per_job"] is not None
    assert result["extra"]["producer_report"]["batching"] is True
    assert result["extra"]["jobs_enqueued"] >= 200


def test_the_typescript_client(test_redis: TestRedis, bench_bin: Path) -> None:
    if shutil.which("node") is None or not (NODE_CLIENT / "dist" / "index.js").exists():
        pytest.skip("the TypeScript client is not built (npm --prefix clients/node ci && run build)")

    result = one_line(test_redis, bench_bin, "--client", "node")

    assert result["jobs"] == 200
    assert result["cost"]["producer_cpu_us_per_job"] is not None
    assert result["extra"]["producer_report"]["calls"] >= 1


def test_a_missing_producer_says_how_to_build_it(test_redis: TestRedis, tmp_path: Path) -> None:
    run = jobq_bench(
        "--scenario", "enqueue_unary", "--client", "stub", "--jobs", "10", "--redis-url", test_redis.url,
        "--json", env={"JOBQ_BENCH_BIN": str(tmp_path)},
    )  # fmt: skip

    assert run.returncode == 1
    assert "go build -C bench/loadgen" in json.loads(run.stdout)["error"]


def test_outside_producers_are_enqueue_unarys_and_call_one_server() -> None:
    assert "--client is enqueue_unary's" in jobq_bench("--scenario", "drain", "--client", "go").stderr
    refused = jobq_bench("--scenario", "enqueue_unary", "--client", "go", "--servers", "2")
    assert refused.returncode == 2 and "use --processes" in refused.stderr
