"""The driver's own logic: the protocol line, Redis cost, medians, the matrix, process groups."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_compare() -> ModuleType:
    # bench/ is not a package; load the script by path under a name no other module has.
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "bench" / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_compare"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


compare = load_compare()


def line(**fields: Any) -> str:
    base = {"system": "x", "scenario": "drain", "jobs": 10, "seconds": 0.5, "jobs_per_second": 20.0}
    return json.dumps({**base, **fields})


def test_parse_line_accepts_a_result_and_a_skip() -> None:
    assert compare.parse_line(line() + "\n")["jobs_per_second"] == 20.0
    skipped = '{"system": "x", "scenario": "drain", "skipped": "no"}'
    assert compare.parse_line(skipped)["skipped"] == "no"


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        line() + "\n" + line(),
        "not json",
        "[1, 2]",
        line(jobs_per_second=None),
        line(latency_ms={"p50": 1.0}),
    ],
)
def test_parse_line_rejects_what_breaks_the_protocol(stdout: str) -> None:
    with pytest.raises(compare.InvalidLine):
        compare.parse_line(stdout)


def test_redis_cost_counts_every_call_minus_the_drivers_info() -> None:
    before = {"calls": {"config|resetstat": 1, "info": 1}, "cpu_s": 10.0}
    after = {
        "calls": {"config|resetstat": 1, "info": 2, "evalsha": 10, "lpush": 20, "hset": 10},
        "cpu_s": 10.5,
    }

    cost = compare.redis_cost(before, after, 10)

    assert cost["redis_commands_per_job"] == 4.0
    assert cost["redis_script_calls_per_job"] == 1.0
    assert cost["redis_cpu_us_per_job"] == pytest.approx(50_000)
    assert "info" not in cost["top_commands"]


def test_with_redis_cost_fills_only_what_the_program_left_null() -> None:
    measured = {"redis_commands_per_job": 3.0, "redis_script_calls_per_job": 1.0, "redis_cpu_us_per_job": 9.0}
    own = {"redis_commands_per_job": 2.5, "redis_script_calls_per_job": None}

    filled = compare.with_redis_cost({"cost": own}, measured)["cost"]
    assert filled["redis_commands_per_job"] == 2.5
    assert filled["redis_script_calls_per_job"] == 1.0
    assert filled["redis_cpu_us_per_job"] == 9.0
    assert compare.with_redis_cost({"cost": None}, measured)["cost"]["worker_cpu_us_per_job"] is None


def cell_with(scenario: str, values: list[float]) -> Any:
    cell = compare.Cell("x", scenario, {"jobs": 10})
    for value in values:
        result = json.loads(line(scenario=scenario, jobs_per_second=value))
        result["latency_ms"] = {"p50": value, "p90": value, "p99": value, "max": value}
        cell.runs.append({"status": "ok", "line": result})
    return cell


def test_summarize_keeps_the_median_run_and_the_range() -> None:
    summary = compare.summarize(cell_with("drain", [300.0, 100.0, 200.0]))
    assert (summary["median"], summary["min"], summary["max"]) == (200.0, 100.0, 300.0)
    assert summary["result"]["jobs_per_second"] == 200.0

    latency = compare.summarize(cell_with("latency_idle", [3.0, 1.0, 2.0]))
    assert latency["metric"] == "p50_ms" and latency["median"] == 2.0


def test_summarize_reports_failures_and_skips() -> None:
    failed = compare.Cell("x", "drain", {})
    failed.runs = [{"status": "failed", "error": "exited with 1"}]
    assert compare.summarize(failed)["status"] == "failed"

    skipped = compare.Cell("x", "drain", {})
    skipped.runs = [{"status": "skipped", "line": {"skipped": "no batch API"}}]
    assert compare.summarize(skipped)["why"] == "no batch API"


def test_matrix_has_the_drain_rows_and_runs_a_repeated_config_once() -> None:
    sizes = compare.Sizes()
    rows = compare.build_matrix(list(compare.SYSTEMS), ["drain"], list(compare.SWEEPS), sizes, smoke=False)
    unique, alias = compare.dedupe(rows)

    labels = {(r.system, r.label) for r in rows if r.group == "main"}
    assert {("jobqueue", "W=1 C=256"), ("jobqueue", "W=2 C=256"), ("bullmq", "W=2 C=50")} <= labels
    assert len(unique) < len(rows)  # the sweeps' W=1 C=256 P=100 rows are the main row
    payload = [r for r in rows if r.group == "sweep:payload"]
    assert [r.config["payload_bytes"] for r in payload] == [100, 10240, 524288]
    assert payload[-1].config["jobs"] < sizes.jobs  # 20,000 x 512 KiB would be 10 GiB
    sweep_w1 = next(r for r in rows if r.group == "sweep:workers" and r.config["workers"] == 1)
    assert alias[sweep_w1.key] is alias[rows[0].key]
    one_server = next(r for r in rows if r.label == "W=2 C=256 servers=1")
    assert alias[one_server.key] is alias[rows[1].key]  # --servers 1 is the default: the main W=2 row


def test_smoke_matrix_is_one_config_per_system_and_scenario_but_every_unary_producer() -> None:
    rows = compare.build_matrix(
        list(compare.SYSTEMS), list(compare.SCENARIOS), list(compare.SWEEPS), compare.Sizes(), smoke=True
    )
    extra_producers = sum(len(producers) - 1 for producers in compare.UNARY_PRODUCERS.values())
    assert len(rows) == len(compare.SYSTEMS) * len(compare.SCENARIOS) + extra_producers


def test_unary_cells_name_the_producer_and_give_both_systems_the_same_connections() -> None:
    rows = compare.build_matrix(
        ["jobqueue", "bullmq", "grpc-echo"], ["enqueue_unary"], [], compare.Sizes(), False
    )

    labels = [(r.system, r.label) for r in rows]
    assert labels == [
        ("jobqueue", "python F=64"), ("jobqueue", "go F=64"), ("jobqueue", "node F=64"),
        ("jobqueue", "stub P=1 F=64 conns=4"), ("jobqueue", "stub P=2 F=64 conns=8"),
        ("bullmq", "F=64"),
        ("grpc-echo", "stub P=1 F=64 conns=4"), ("grpc-echo", "stub P=2 F=64 conns=8"),
    ]  # fmt: skip
    stub = rows[4]
    args = compare.protocol_args(stub, "redis://h:1/0")
    assert args[args.index("--client") + 1] == "stub"
    assert args[args.index("--processes") + 1] == "2" and args[args.index("--connections") + 1] == "8"
    assert "client" not in rows[5].config  # BullMQ gets the protocol's arguments only


def test_jobqueue_latency_idle_carries_the_idle_phase_and_smoke_shortens_its_window() -> None:
    args = compare.parse_args(["--smoke"])
    rows = compare.build_matrix(["jobqueue", "bullmq"], ["latency_idle"], [], compare.sizes_for(args), True)

    ours, peer = rows
    assert (ours.config["idle_streams"], ours.config["idle_seconds"]) == (50, 2)
    assert ours.label == "30 samples + 50 idle streams"
    assert "idle_streams" not in peer.config


def test_protocol_args_pass_every_config_value() -> None:
    cell = compare.Cell("x", "latency_rate", {"jobs": 5, "in_flight": 64, "rate": 1000.0, "duration": 0.5})
    args = compare.protocol_args(cell, "redis://h:1/0")
    assert args == [
        "--scenario", "latency_rate", "--redis-url", "redis://h:1/0", "--jobs", "5",
        "--in-flight", "64", "--rate", "1000", "--duration", "0.5",
    ]  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_execute_stops_what_a_program_leaves_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}; echo '{{}}'"

    code, stdout, _, leftover = compare.execute(["bash", "-c", script], timeout_s=30)

    assert (code, stdout.strip(), leftover) == (0, "{}", True)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_execute_times_out_and_stops_the_group() -> None:
    started = time.monotonic()
    code, _, _, _ = compare.execute(["bash", "-c", "sleep 60"], timeout_s=0.5)
    assert code is None
    assert time.monotonic() - started < 10


def test_markdown_quotes_each_system_and_the_ratio() -> None:
    ours = compare.summarize(cell_with("drain", [400.0]))
    ours.update(system="jobqueue", label="W=1 C=256")
    peer = compare.summarize(cell_with("drain", [100.0]))
    peer.update(system="bullmq", label="W=1 C=50")
    machine = {"cpu_model": "cpu", "cores": 2, "memory": "1 GiB", "kernel": "k", "valkey_version": "9"}
    doc = {"started": "t", "machine": machine, "command": ["compare.py"], "reps": 1, "cells": [ours, peer]}

    text = compare.markdown(doc)

    assert "| drain | 400 (W=1 C=256) | 100 (W=1 C=50) · \u00d74.00 |" in text
    assert "| Valkey µs/job | server µs/job | worker µs/job | producer µs/job |" in text


def test_markdown_and_json_carry_the_targets(tmp_path: Path) -> None:
    ours = compare.summarize(cell_with("drain", [400.0]))
    ours.update(system="jobqueue", label="W=1 C=256")
    machine = {"cpu_model": "cpu", "cores": 2, "memory": "1 GiB", "kernel": "k", "valkey_version": "9"}
    judged = compare.targets.evaluate([ours])
    doc = {
        "started": "2026-01-01T00:00:00Z", "machine": machine, "command": ["compare.py"], "reps": 1,
        "cells": [ours], "targets": [t.document() for t in judged],
    }  # fmt: skip

    compare.write_outputs(doc, tmp_path)

    text = (tmp_path / "latest.md").read_text()
    assert "## Targets (issue 11)" in text
    assert "no baseline given" in text
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert [t["number"] for t in saved["targets"]] == [1, 2, 3, 4, 5, 6, 7]
    assert saved["targets"][0]["status"] == "not measured"


def test_baseline_must_be_a_results_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(SystemExit):
        compare.parse_args(["--baseline", str(bad)])
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"cells": []}))
    assert compare.parse_args(["--baseline", str(good)]).baseline["cells"] == []
