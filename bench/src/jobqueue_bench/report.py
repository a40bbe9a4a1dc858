"""Results for people (a table) and for programs (JSON lines, and a results file)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from jobqueue_bench.machine import machine
from jobqueue_bench.results import Result


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _latency(result: Result) -> str:
    if not result.latency_ms:
        return "-"
    return f"{result.latency_ms['p50']:.2f} / {result.latency_ms['p99']:.2f}"


def _row(result: Result) -> list[str]:
    config = [result.config.scenario, result.config.label()]
    if result.error is not None:
        return [*config, f"[red]failed[/]: {result.error}", *["-"] * 7]
    cost = result.cost
    costs = [
        _number(cost.redis_commands_per_job, 2), _number(cost.redis_script_calls_per_job, 2),
        _number(cost.redis_cpu_us_per_job, 0), _number(cost.server_cpu_us_per_job, 0),
        _number(cost.worker_cpu_us_per_job, 0), _number(cost.producer_cpu_us_per_job, 0),
    ] if cost is not None else ["-"] * 6  # fmt: skip
    return [*config, _number(result.jobs_per_second, 0), _latency(result), *costs]


def table(results: Sequence[Result]) -> Table:
    grid = Table(title="jobq bench", title_justify="left")
    grid.add_column("scenario", no_wrap=True)
    grid.add_column("config", no_wrap=True)
    for name in ("jobs/s", "p50 / p99 ms", "Redis cmds/job", "scripts/job", "Redis µs/job"):
        grid.add_column(name, justify="right")
    grid.add_column("server µs/job", justify="right")
    grid.add_column("worker µs/job", justify="right")
    grid.add_column("producer µs/job", justify="right")
    for result in results:
        grid.add_row(*_row(result))
    return grid


def print_table(results: Sequence[Result], versions: dict[str, str], console: Console) -> None:
    console.print(table(results))
    console.print(
        "p50 / p99: per call for enqueue_unary and enqueue_batch, handler start minus enqueue time "
        "for the latency scenarios. Costs per job cover enqueue and processing.",
        style="dim",
    )
    for result in results:
        if result.idle is not None:  # latency_idle's idle phase, as its notes give it
            console.print(result.notes[result.notes.index("idle: ") :], style="dim")
    console.print(", ".join(f"{name} {version}" for name, version in versions.items()), style="dim")


def json_lines(results: Sequence[Result]) -> Iterator[str]:
    for result in results:
        yield json.dumps(result.document(), separators=(", ", ": "))


def results_file(
    results: Sequence[Result], versions: dict[str, str], command: Sequence[str]
) -> dict[str, Any]:
    return {
        "command": list(command),
        "machine": machine(),
        "versions": versions,
        "results": [result.document() for result in results],
    }


def write_results(
    path: Path, results: Sequence[Result], versions: dict[str, str], command: Sequence[str]
) -> None:
    path.write_text(json.dumps(results_file(results, versions, command), indent=2) + "\n")
