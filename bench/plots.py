"""The benchmark's figures, from a results JSON of bench/compare.py, as PNGs (docs/img/ by default).

    bench/.venv/bin/python bench/plots.py [bench/results/latest.json] [--out docs/img]

- latency-percentiles.png: p50/p90/p99 per system at the fixed rate and idle (grouped bars, log y).
- throughput-vs-workers.png: drain jobs/s against worker processes, and jobqueue's window sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

ROOT = Path(__file__).resolve().parent.parent
CEILING = "grpc-echo"
PERCENTILES = ("p50", "p90", "p99")
LATENCY_PANELS = (("latency_rate", "at a fixed rate"), ("latency_idle", "idle worker, one job at a time"))


def ok_cells(doc: dict[str, Any], scenario: str, groups: tuple[str, ...] = ("main",)) -> list[dict[str, Any]]:
    return [
        c for c in doc["cells"] if c["scenario"] == scenario and c["group"] in groups and c["status"] == "ok"
    ]


def best_latency_per_system(doc: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    """Each system's cell with the lowest median p50 (its best config)."""
    best: dict[str, dict[str, Any]] = {}
    for cell in ok_cells(doc, scenario):
        if cell["result"].get("latency_ms") and (
            cell["system"] not in best or cell["median"] < best[cell["system"]]["median"]
        ):
            best[cell["system"]] = cell
    return best


def no_data(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def latency_panel(ax: Axes, doc: dict[str, Any], scenario: str, title: str) -> None:
    cells = best_latency_per_system(doc, scenario)
    if not cells:
        no_data(ax, title)
        return
    systems = list(cells)
    width = 0.8 / len(PERCENTILES)
    for i, name in enumerate(PERCENTILES):
        values = [max(cells[s]["result"]["latency_ms"][name], 1e-3) for s in systems]
        xs = [x + (i - 1) * width for x in range(len(systems))]
        ax.bar(xs, values, width, label=name)
    # Labels wrapped: jobqueue's latency_idle label also names its idle phase.
    labels = [f"{s}\n{textwrap.fill(cells[s]['label'], 14)}" for s in systems]
    ax.set_xticks(range(len(systems)), labels, fontsize=8)
    ax.set_yscale("log")
    # Plain numbers ("6", not "6x10^0"); minor ticks labelled at 2 and 5 only, so they stay legible.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _pos: f"{value:g}" if f"{value:g}"[0] in "25" else "")
    )
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_ylabel("enqueue → handler start (ms)")
    ax.set_title(title)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend()


def latency_figure(doc: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, (scenario, title) in zip(axes, LATENCY_PANELS, strict=True):
        rate = next((c["config"]["rate"] for c in ok_cells(doc, scenario)), None)
        latency_panel(
            ax, doc, scenario, f"{title} ({rate:g} jobs/s)" if rate and scenario == "latency_rate" else title
        )
    fig.suptitle("Job latency: p50 / p90 / p99 (median run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def drain_by_workers(doc: dict[str, Any]) -> dict[str, dict[int, float]]:
    """system -> workers -> best median jobs/s (over the concurrency settings run at that W)."""
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for cell in ok_cells(doc, "drain", ("main", "sweep:workers")):
        if cell["config"].get("payload_bytes", 100) != 100 or "servers" in cell["config"]:
            continue
        workers = int(cell["config"]["workers"])
        series[cell["system"]][workers] = max(series[cell["system"]].get(workers, 0.0), cell["median"])
    return dict(series)


def workers_panel(ax: Axes, doc: dict[str, Any]) -> None:
    series = drain_by_workers(doc)
    # The bare gRPC ceiling is tens of times higher than any queue: named in the title, not drawn.
    ceiling = series.pop(CEILING, {})
    title = "drain: jobs/s against worker processes"
    if ceiling:
        title += f"\n(grpc-echo ceiling, not drawn: {max(ceiling.values()):,.0f} jobs/s)"
    if not series:
        no_data(ax, title)
        return
    for system, points in sorted(series.items()):
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=system)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("jobs/s (median)")
    ax.set_xticks(sorted({x for points in series.values() for x in points}))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def window_panel(ax: Axes, doc: dict[str, Any]) -> None:
    cells = ok_cells(doc, "drain", ("sweep:window",))
    title = "jobqueue drain: jobs/s against the Lease window (1 worker)"
    if not cells:
        no_data(ax, title)
        return
    points = sorted((int(c["config"]["concurrency"]), c["median"], c["min"], c["max"]) for c in cells)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    errors = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
    ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label="jobqueue")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("window (jobs in flight per worker)")
    ax.set_ylabel("jobs/s (median, min\u2013max)")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def throughput_figure(doc: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    workers_panel(axes[0], doc)
    window_panel(axes[1], doc)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        latency_figure(doc, out_dir / "latency-percentiles.png"),
        throughput_figure(doc, out_dir / "throughput-vs-workers.png"),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, nargs="?", default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    for path in draw_all(json.loads(args.results.read_text()), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
