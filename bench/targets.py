"""Issue 11's targets, judged from the cell summaries of one run of bench/compare.py.

Each target is a list of checks: a figure, its threshold, and met / MISSED / not measured (the
run did not include the cells it needs, or they failed). A target is MISSED when any of its
checks is, not measured when any is and none is missed, else met. Stretch goals and figures
given for context are checks that do not count towards the target.

    targets = evaluate(summaries, baseline=None)
    print("\n".join(text_lines(targets)))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

MET, MISSED, NOT_MEASURED = "met", "MISSED", "not measured"
LATENCY_SCENARIOS = ("latency_rate", "latency_idle")
WORKER_SCENARIOS = ("drain", "end_to_end", "latency_rate", "latency_idle")
PEER = "bullmq"
CEILING = "grpc-echo"
CLIENTS = ("python", "go", "node")
IDLE_BUDGET_PERCENT = 2.0
SUSTAINED = 0.97
Summary = dict[str, Any]


@dataclass
class Check:
    what: str
    figure: str
    threshold: str
    status: str
    counts: bool = True  # False: a stretch goal or a figure for context


@dataclass
class Target:
    number: int
    title: str
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> str:
        counted = [check.status for check in self.checks if check.counts]
        if MISSED in counted:
            return MISSED
        return NOT_MEASURED if not counted or NOT_MEASURED in counted else MET

    def document(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def judged(ok: bool) -> str:
    return MET if ok else MISSED


def missing(what: str, why: str, threshold: str = "") -> Check:
    return Check(what, why, threshold, NOT_MEASURED)


# --- finding cells ---------------------------------------------------------------------------


def main_cells(summaries: Iterable[Summary], system: str, scenario: str) -> list[Summary]:
    return [
        s
        for s in summaries
        if (s["system"], s["scenario"], s["group"], s["status"]) == (system, scenario, "main", "ok")
    ]


def best(summaries: Iterable[Summary], system: str, scenario: str) -> Summary | None:
    """A system's best main cell for a scenario (its best config is what a user would run)."""
    cells = main_cells(summaries, system, scenario)
    if not cells:
        return None
    pick = min if scenario in LATENCY_SCENARIOS else max
    return pick(cells, key=lambda s: s["median"])


def unary_cell(summaries: Iterable[Summary], system: str, client: str, processes: int = 1) -> Summary | None:
    """The enqueue_unary cell of one producer (client) and server process count."""
    for cell in main_cells(summaries, system, "enqueue_unary"):
        config = cell["config"]
        if config.get("client") == client and config.get("processes", 1) == processes:
            return cell
    return None


def throughput(cell: Summary) -> str:
    return f"{cell['median']:,.0f} jobs/s ({cell['system']} {cell['label']})"


def ratio_check(
    what: str, ours: Summary | None, theirs: Summary | None, factor: float, counts: bool = True
) -> Check:
    """ours >= factor x theirs, in jobs/s."""
    threshold = f">= x{factor:.2f}"
    if ours is None or theirs is None:
        absent = " and ".join(name for name, cell in (("ours", ours), ("the peer's", theirs)) if cell is None)
        return Check(what, f"{absent} not in this run (or failed)", threshold, NOT_MEASURED, counts)
    ratio = ours["median"] / theirs["median"] if theirs["median"] else float("inf")
    figure = f"{throughput(ours)} vs {throughput(theirs)}: x{ratio:.2f}"
    return Check(what, figure, threshold, judged(ratio >= factor), counts)


# --- the targets -----------------------------------------------------------------------------


def versus_peer(number: int, scenario: str, summaries: list[Summary]) -> Target:
    title = f"{scenario}: jobqueue's best config >= 2x BullMQ's best (jobs/s)"
    check = ratio_check(
        "best vs best", best(summaries, "jobqueue", scenario), best(summaries, PEER, scenario), 2.0
    )
    return Target(number, title, [check])


def unary_clients(summaries: list[Summary]) -> Target:
    target = Target(3, "enqueue_unary through each client library (batching on) >= BullMQ's best; stretch 2x")
    peer = best(summaries, PEER, "enqueue_unary")
    for client in CLIENTS:
        ours = unary_cell(summaries, "jobqueue", client)
        target.checks.append(ratio_check(f"{client} client", ours, peer, 1.0))
        target.checks.append(ratio_check(f"{client} client, stretch", ours, peer, 2.0, counts=False))
    return target


def raw_unary(summaries: list[Summary]) -> Target:
    target = Target(4, "raw unary Enqueue (bench/loadgen): 1 process >= 90% of grpc-echo's; 2 processes > 1")
    ours = {p: unary_cell(summaries, "jobqueue", "stub", p) for p in (1, 2)}
    echo = {p: unary_cell(summaries, CEILING, "stub", p) for p in (1, 2)}
    target.checks += [
        ratio_check("jobqueue vs grpc-echo, 1 process", ours[1], echo[1], 0.9),
        growth_check(ours[1], ours[2]),
        ratio_check("jobqueue vs grpc-echo, 2 processes", ours[2], echo[2], 0.9, counts=False),
    ]
    return target


def growth_check(one: Summary | None, two: Summary | None) -> Check:
    what, threshold = "jobqueue, 2 processes vs 1", "> x1.00"
    if one is None or two is None:
        return missing(what, "a stub cell is not in this run (or failed)", threshold)
    ratio = two["median"] / one["median"] if one["median"] else float("inf")
    return Check(
        what, f"{throughput(two)} vs {throughput(one)}: x{ratio:.2f}", threshold, judged(ratio > 1.0)
    )


def latency(summaries: list[Summary]) -> Target:
    target = Target(
        5, "latency: at a fixed rate sustained with p50 <= 2 ms, p99 <= 10 ms; idle p50 <= 1.5, p99 <= 3"
    )
    rate = best(summaries, "jobqueue", "latency_rate")
    target.checks.append(sustained(rate))
    target.checks += percentile_checks("latency_rate", rate, 2.0, 10.0)
    target.checks += percentile_checks("latency_idle", best(summaries, "jobqueue", "latency_idle"), 1.5, 3.0)
    for scenario in LATENCY_SCENARIOS:  # the floor of the two gRPC hops, for context
        target.checks += relay_floor(scenario, best(summaries, CEILING, scenario))
    return target


def relay_floor(scenario: str, cell: Summary | None) -> list[Check]:
    """grpc-echo's relay (producer -> server -> worker, no Redis): what two bare grpc.aio hops
    cost on this machine in this run; not judged."""
    if cell is None or not cell["result"].get("latency_ms"):
        return []
    figures = cell["result"]["latency_ms"]
    figure = f"p50 {figures['p50']:.2f} ms, p99 {figures['p99']:.2f} ms ({cell['label']})"
    return [Check(f"{scenario}: bare grpc.aio relay, no Redis", figure, "", "context", counts=False)]


def sustained(cell: Summary | None) -> Check:
    what = "latency_rate sustained"
    if cell is None:
        return missing(
            what, "no jobqueue latency_rate cell in this run (or it failed)", f">= {SUSTAINED:.0%}"
        )
    asked = float(cell["config"]["rate"])
    done = cell["result"]["jobs"] >= round(asked * float(cell["config"]["duration"]))
    achieved = float(cell["result"]["jobs_per_second"])
    share = f"{achieved / asked:.1%}"
    figure = f"{cell['result']['jobs']:,} jobs done, {achieved:,.0f}/s of {asked:,.0f}/s asked ({share})"
    return Check(
        what,
        figure,
        f"all done, >= {SUSTAINED:.0%} of the rate",
        judged(done and achieved >= SUSTAINED * asked),
    )


def percentile_checks(scenario: str, cell: Summary | None, p50: float, p99: float) -> list[Check]:
    if cell is None:
        return [
            missing(scenario, f"no jobqueue {scenario} cell in this run (or it failed)", f"p50 <= {p50:g} ms")
        ]
    figures = cell["result"]["latency_ms"]
    return [
        Check(f"{scenario} {name}", f"{figures[name]:.2f} ms ({cell['label']})", f"<= {limit:g} ms",
              judged(figures[name] <= limit))
        for name, limit in (("p50", p50), ("p99", p99))
    ]  # fmt: skip


def idle(summaries: list[Summary]) -> Target:
    """Both layouts of the idle phase (the same 64 queues for every stream, and 64 of each
    stream's own) count: the target names 64 queues per stream, not which."""
    title = f"idle: 50 Lease streams x 64 queues cost <= {IDLE_BUDGET_PERCENT:g}% of a core; released after"
    target = Target(6, title)
    cell = best(summaries, "jobqueue", "latency_idle")
    figures = (cell or {}).get("result", {}).get("idle")
    if not figures:
        target.checks.append(missing("idle cost", "no idle phase in this run (jobqueue latency_idle)"))
        return target
    for name, window in figures["layouts"].items():
        target.checks += [idle_check(name, window, figures), idle_parts(name, window, figures)]
    target.checks.append(release_check(figures))
    return target


def idle_check(name: str, window: dict[str, Any], figures: dict[str, Any]) -> Check:
    total = window["total_cpu_percent"]
    shape = f"{figures['streams']} streams x {figures['queues_per_stream']}, {window['queues']} queues in all"
    figure = f"{fmt_percent(total)} of a core ({shape}, {figures['window_seconds']:g} s)"
    status = NOT_MEASURED if total is None else judged(total <= IDLE_BUDGET_PERCENT)
    return Check(f"{name} queues: server + Valkey CPU", figure, f"<= {IDLE_BUDGET_PERCENT:g}%", status)


def idle_parts(name: str, window: dict[str, Any], figures: dict[str, Any]) -> Check:
    figure = (
        f"server {fmt_percent(window['server_cpu_percent'])} ({figures['server_processes']} process(es)), "
        f"Valkey {fmt_percent(window['redis_cpu_percent'])}, "
        f"{window['redis_commands_per_second']:,.1f} Redis commands/s"
    )
    top = window.get("top_commands") or {}
    if top:
        per_second = ", ".join(
            f"{cmd} {count / figures['window_seconds']:,.0f}" for cmd, count in top.items()
        )
        figure += f" ({per_second} per s)"
    return Check(f"{name} queues: each", figure, "", MET, counts=False)


def release_check(figures: dict[str, Any]) -> Check:
    ok = bool(figures["released"])
    return Check("subscriptions released", release_figure(figures), "back to before within ~30 s", judged(ok))


def fmt_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def release_figure(figures: dict[str, Any]) -> str:
    when = f"after {figures['release_seconds']:.1f} s" if figures["released"] else "not released"
    return (
        f"{when}: channels {figures['channels_before']} before, {figures['channels_after']} after; "
        f"NUMPAT {figures['numpat_before']} before, {figures['numpat_after']} after"
    )


def cpu_per_job(summaries: list[Summary], baseline: dict[str, Any] | None) -> Target:
    target = Target(7, "per-job CPU of server, worker and Valkey reported; Valkey CPU/job <= the baseline's")
    target.checks.append(cpu_reported(summaries))
    if baseline is None:
        target.checks.append(missing("Valkey CPU/job vs baseline", "no baseline given", "<= baseline"))
        return target
    ours = [
        s for s in summaries if s["system"] == "jobqueue" and s["group"] == "main" and s["status"] == "ok"
    ]
    if not ours:
        target.checks.append(
            missing("Valkey CPU/job vs baseline", "no jobqueue cell in this run", "<= baseline")
        )
    target.checks += [baseline_check(cell, baseline["cells"]) for cell in ours]
    return target


def cost_of(cell: Summary, name: str) -> float | None:
    value = (cell["result"].get("cost") or {}).get(name)
    return None if value is None else float(value)


def cpu_reported(summaries: list[Summary]) -> Check:
    what, threshold = "server, worker, Valkey CPU/job in every jobqueue cell", "all reported"
    cells = [s for s in summaries if s["system"] == "jobqueue" and s["status"] == "ok"]
    if not cells:
        return missing(what, "no jobqueue cell in this run", threshold)
    gaps = [
        f"{cell['scenario']} {cell['label']}: {name}"
        for cell in cells
        for name in needed_costs(cell["scenario"])
        if cost_of(cell, name) is None
    ]
    figure = f"{len(cells)} cells, " + (f"missing: {', '.join(gaps)}" if gaps else "all there")
    return Check(what, figure, threshold, judged(not gaps))


def needed_costs(scenario: str) -> list[str]:
    names = ["server_cpu_us_per_job", "redis_cpu_us_per_job"]
    return [*names, "worker_cpu_us_per_job"] if scenario in WORKER_SCENARIOS else names


def baseline_check(cell: Summary, baseline_cells: list[Summary]) -> Check:
    """The cell's Valkey CPU/job against the baseline's cell of the same scenario and label, or
    else the baseline's best cell of that scenario."""
    what = f"Valkey CPU/job, {cell['scenario']} {cell['label']}"
    theirs = next(
        (b for b in main_cells(baseline_cells, "jobqueue", cell["scenario"]) if b["label"] == cell["label"]),
        best(baseline_cells, "jobqueue", cell["scenario"]),
    )
    ours_us = cost_of(cell, "redis_cpu_us_per_job")
    theirs_us = None if theirs is None else cost_of(theirs, "redis_cpu_us_per_job")
    if theirs is None or ours_us is None or theirs_us is None:
        return missing(what, "no figure in the baseline (or in this run)", "<= baseline")
    ratio = ours_us / max(theirs_us, 1e-9)
    figure = f"{ours_us:,.2f} µs vs {theirs_us:,.2f} µs (baseline {theirs['label']}): x{ratio:.3f}"
    return Check(what, figure, "<= baseline", judged(ours_us <= theirs_us))


TARGETS: list[Callable[[list[Summary]], Target]] = [
    lambda s: versus_peer(1, "drain", s),
    lambda s: versus_peer(2, "enqueue_batch", s),
    unary_clients,
    raw_unary,
    latency,
    idle,
]


def evaluate(summaries: list[Summary], baseline: dict[str, Any] | None = None) -> list[Target]:
    """Targets 1 to 7 from a run's summaries; `baseline` is an earlier run's results document."""
    return [make(summaries) for make in TARGETS] + [cpu_per_job(summaries, baseline)]


# --- output ----------------------------------------------------------------------------------


def status_of(check: Check) -> str:
    return check.status if check.counts else f"({check.status}, not counted)" if check.threshold else ""


def text_lines(targets: list[Target]) -> list[str]:
    lines = ["Targets (issue 11)"]
    for target in targets:
        lines.append(f" {target.number}. {target.title}: {target.status}")
        for check in target.checks:
            threshold = f" [{check.threshold}]" if check.threshold else ""
            lines.append(f"    - {check.what}: {check.figure}{threshold} {status_of(check)}".rstrip())
    return lines


def markdown_lines(targets: list[Target]) -> list[str]:
    lines = [
        "## Targets (issue 11)",
        "",
        "| # | target | check | figures | threshold | status |",
        "|---|---|---|---|---|---|",
    ]
    for target in targets:
        for index, check in enumerate(target.checks):
            head = (str(target.number), f"{target.title} **{target.status}**") if index == 0 else ("", "")
            cells = (*head, check.what, check.figure, check.threshold, status_of(check))
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return lines
