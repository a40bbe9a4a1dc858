"""Issue 11's targets (bench/targets.py) judged from hand-made summaries: met, missed, not measured."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_targets() -> ModuleType:
    # bench/ is not a package: loaded by path, under a name no other module has.
    spec = importlib.util.spec_from_file_location("bench_targets", ROOT / "bench" / "targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_targets"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


targets = load_targets()
COST = {"redis_cpu_us_per_job": 50.0, "server_cpu_us_per_job": 80.0, "worker_cpu_us_per_job": 40.0}
WINDOW = {
    "queues": 64, "server_cpu_percent": 0.5, "redis_cpu_percent": 0.3, "total_cpu_percent": 0.8,
    "redis_commands_per_second": 1.2, "subscribe_seconds": 0.4,
}  # fmt: skip
IDLE = {
    "streams": 50, "queues_per_stream": 64, "window_seconds": 10.0, "server_processes": 1,
    "layouts": {"shared": WINDOW, "distinct": {**WINDOW, "queues": 3200}},
    "channels_before": 1, "channels_after": 0, "numpat_before": 0, "numpat_after": 0,
    "released": True, "release_seconds": 10.3,
}  # fmt: skip


def cell(system: str, scenario: str, median: float, label: str = "L", **config: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"jobs": config.pop("jobs", 1000), "jobs_per_second": median, "cost": dict(COST)}
    if scenario in targets.LATENCY_SCENARIOS:
        result["latency_ms"] = {"p50": median, "p90": median, "p99": config.pop("p99", median), "max": median}
    result.update(config.pop("result", {}))
    return {
        "system": system, "scenario": scenario, "group": "main", "status": "ok", "label": label,
        "config": config, "median": median, "result": result,
    }  # fmt: skip


def unary(system: str, client: str, median: float, processes: int = 1) -> dict[str, Any]:
    return cell(
        system, "enqueue_unary", median, f"{client} P={processes}", client=client, processes=processes
    )


def by_number(summaries: list[dict[str, Any]], baseline: dict[str, Any] | None = None) -> dict[int, Any]:
    return {target.number: target for target in targets.evaluate(summaries, baseline)}


def good_run() -> list[dict[str, Any]]:
    return [
        cell("jobqueue", "drain", 12_000, "W=2"), cell("jobqueue", "drain", 9_000, "W=1"),
        cell("bullmq", "drain", 5_000), cell("bullmq", "drain", 5_500),
        cell("jobqueue", "enqueue_batch", 20_000), cell("bullmq", "enqueue_batch", 8_000),
        unary("jobqueue", "python", 25_000), unary("jobqueue", "go", 30_000),
        unary("jobqueue", "node", 12_000),
        cell("bullmq", "enqueue_unary", 11_000),
        unary("jobqueue", "stub", 2_700, 1), unary("jobqueue", "stub", 4_500, 2),
        unary("grpc-echo", "stub", 2_900, 1), unary("grpc-echo", "stub", 5_000, 2),
        cell("jobqueue", "latency_rate", 1.2, p99=6.0, rate=1000, duration=5, jobs=5000,
             result={"jobs_per_second": 995.0}),
        cell("jobqueue", "latency_idle", 1.1, p99=2.5, result={"idle": dict(IDLE)}),
    ]  # fmt: skip


def test_a_run_that_meets_every_target_is_met_everywhere_but_the_missing_baseline() -> None:
    found = by_number(good_run())

    assert [found[n].status for n in range(1, 7)] == [targets.MET] * 6
    assert found[1].checks[0].figure.endswith("x2.18")  # best vs best: 12,000 / 5,500
    assert found[7].status == targets.NOT_MEASURED
    assert found[7].checks[1].figure == "no baseline given"


def test_a_stretch_goal_missed_does_not_miss_the_target() -> None:
    found = by_number(good_run())[3]

    node_stretch = next(check for check in found.checks if check.what == "node client, stretch")
    assert node_stretch.status == targets.MISSED and not node_stretch.counts
    assert found.status == targets.MET


@pytest.mark.parametrize(
    ("number", "peer"),
    [
        (1, cell("bullmq", "drain", 7_000)),
        (2, cell("bullmq", "enqueue_batch", 10_001)),
        (3, cell("bullmq", "enqueue_unary", 12_500)),  # node's 12,000 falls short
    ],
)
def test_a_peer_that_does_better_misses_the_target(number: int, peer: dict[str, Any]) -> None:
    assert by_number([*good_run(), peer])[number].status == targets.MISSED


def test_raw_unary_below_90_percent_of_the_echo_misses() -> None:
    summaries = [s for s in good_run() if s["system"] != "grpc-echo"]
    summaries += [unary("grpc-echo", "stub", 3_100, 1), unary("grpc-echo", "stub", 5_000, 2)]

    found = by_number(summaries)[4]
    assert found.status == targets.MISSED
    assert found.checks[0].figure.endswith("x0.87")


def test_two_processes_must_do_more_than_one() -> None:
    summaries = [s for s in good_run() if s["config"].get("processes") != 2 or s["system"] != "jobqueue"]
    summaries.append(unary("jobqueue", "stub", 2_600, 2))

    growth = by_number(summaries)[4].checks[1]
    assert (growth.what, growth.status) == ("jobqueue, 2 processes vs 1", targets.MISSED)


def test_latency_needs_the_rate_sustained_and_both_percentiles() -> None:
    summaries = [s for s in good_run() if s["scenario"] != "latency_rate"]
    summaries.append(
        cell("jobqueue", "latency_rate", 1.5, p99=12.0, rate=1000, duration=5, jobs=5000,
             result={"jobs_per_second": 950.0})
    )  # fmt: skip

    checks = {check.what: check.status for check in by_number(summaries)[5].checks}
    assert checks["latency_rate sustained"] == targets.MISSED  # 95% of the rate
    assert checks["latency_rate p50"] == targets.MET
    assert checks["latency_rate p99"] == targets.MISSED
    assert checks["latency_idle p99"] == targets.MET


def test_idle_over_budget_in_either_layout_or_not_released_is_missed() -> None:
    summaries = good_run()
    idle = summaries[-1]["result"]["idle"]
    idle["layouts"]["distinct"] = {**WINDOW, "queues": 3200, "total_cpu_percent": 2.5}
    idle.update(released=False, release_seconds=None)

    checks = {check.what: check for check in by_number(summaries)[6].checks}
    assert checks["shared queues: server + Valkey CPU"].status == targets.MET
    assert checks["distinct queues: server + Valkey CPU"].status == targets.MISSED
    assert "3200 queues in all" in checks["distinct queues: server + Valkey CPU"].figure
    assert checks["subscriptions released"].status == targets.MISSED
    assert "not released" in checks["subscriptions released"].figure


def test_targets_without_their_cells_are_not_measured() -> None:
    found = by_number([cell("jobqueue", "drain", 10_000)])

    assert [found[n].status for n in range(1, 8)] == [targets.NOT_MEASURED] * 7
    assert "the peer's not in this run" in found[1].checks[0].figure


def test_a_cell_without_its_cpu_figures_misses_target_7() -> None:
    summaries = good_run()
    summaries[0]["result"]["cost"]["worker_cpu_us_per_job"] = None

    reported = by_number(summaries)[7].checks[0]
    assert reported.status == targets.MISSED
    assert "drain W=2: worker_cpu_us_per_job" in reported.figure


def test_valkey_cpu_is_compared_with_the_same_cell_of_the_baseline_or_its_best() -> None:
    baseline_cells = [
        cell("jobqueue", "drain", 8_000, "W=2"),
        cell("jobqueue", "enqueue_batch", 15_000, "other"),
    ]
    baseline_cells[0]["result"]["cost"]["redis_cpu_us_per_job"] = 40.0  # ours are 50: higher
    baseline_cells[1]["result"]["cost"]["redis_cpu_us_per_job"] = 60.0

    checks = {c.what: c for c in by_number(good_run(), {"cells": baseline_cells})[7].checks}

    assert checks["Valkey CPU/job, drain W=2"].status == targets.MISSED
    assert checks["Valkey CPU/job, drain W=1"].status == targets.MISSED  # against the baseline's best drain
    assert checks["Valkey CPU/job, enqueue_batch L"].status == targets.MET
    assert "baseline other" in checks["Valkey CPU/job, enqueue_batch L"].figure
    assert checks["Valkey CPU/job, latency_rate L"].status == targets.NOT_MEASURED


def test_text_and_markdown_name_every_target_and_its_status() -> None:
    judged = targets.evaluate(good_run())

    text = "\n".join(targets.text_lines(judged))
    table = "\n".join(targets.markdown_lines(judged))

    for target in judged:
        assert f" {target.number}. " in text
        assert f"| {target.number} | " in table
    assert "(MISSED, not counted)" in text  # node's stretch goal
    assert "**not measured**" in table  # target 7 without a baseline
