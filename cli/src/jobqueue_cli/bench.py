"""`jobq bench`: jobqueue's own benchmark (bench/PROTOCOL.md for one measurement, or a suite)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any, cast

import click

from jobqueue_bench.config import CLIENTS, SCENARIOS, BenchConfig, Scenario

_COUNT = click.IntRange(min=1)
WIDE = 160


@click.command()
@click.option(
    "--scenario", type=click.Choice(SCENARIOS), help="Run one measurement; unset: the default suite."
)
@click.option("--redis-url", help="Measure on this Redis; unset: an embedded Valkey in a temporary folder.")
@click.option("--jobs", type=_COUNT, help="Jobs (latency_idle: samples)  [default 20000; latency_idle 200].")
@click.option("--workers", type=_COUNT, help="Worker processes  [default 1].")
@click.option(
    "--concurrency", type=_COUNT, help="Jobs in flight per worker (the Lease window)  [default 256]."
)
@click.option("--batch", type=_COUNT, help="Jobs per enqueue_many call  [default 500].")
@click.option("--in-flight", type=_COUNT, help="Enqueue calls in flight (enqueue_unary)  [default 64].")
@click.option("--payload-bytes", type=_COUNT, help="Size of each job's JSON payload  [default 100].")
@click.option("--rate", type=_COUNT, help="Jobs per second (latency_rate)  [default 1000].")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds (latency_rate)  [default 5]."
)
@click.option(
    "--servers", type=_COUNT, help="jobq serve processes; workers and calls take them in turn  [default 1]."
)
@click.option(
    "--processes", type=_COUNT, help="Server processes of each jobq serve, on one port  [default 1]."
)
@click.option(
    "--client",
    type=click.Choice(CLIENTS),
    help="enqueue_unary's producer: our Python, Go or TypeScript client, or a raw stub  [default python].",
)
@click.option(
    "--connections", type=_COUNT, help="Connections of the stub client  [default 4 per server process]."
)
@click.option(
    "--idle-streams",
    type=click.IntRange(min=0),
    help="latency_idle: idle Lease streams (64 queues each) measured after the samples  [default 50].",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="latency_idle: the idle window in seconds  [default 10].",
)
@click.option("--quick", is_flag=True, help="Shrink every count for a smoke run of a few seconds.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON line per measurement instead of the table."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write results, machine facts and versions here.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds a measurement may take.",
)
def bench(scenario: str | None, quick: bool, as_json: bool, out: Path | None, timeout: float,
          redis_url: str | None, **knobs: Any) -> None:  # fmt: skip
    """Measure jobqueue on this machine: throughput, latency and the cost per job.

    Each measurement starts `jobq serve` processes on a Redis (an embedded Valkey with the
    settings of `jobq serve`, unless --redis-url is given), no-op worker processes using
    jobqueue.Worker, and drives the scenario from this process. Everything it starts is
    stopped at the end; on a --redis-url the keys it wrote are deleted.

    \b
    Scenarios (bench/PROTOCOL.md):
      enqueue_unary  N jobs, one enqueue call each, F calls in flight, through --client:
                     python (AsyncClient), go (clients/go), node (clients/node), each
                     batching as by default, or stub (bench/loadgen: raw unary Enqueue)
      enqueue_batch  N jobs with enqueue_many calls of B
      drain          N jobs queued first; W workers start; first handler start to last end
      end_to_end     workers idle; N jobs enqueued in batches; first enqueue to last end
      latency_rate   workers idle; single enqueues at R jobs/s for S seconds
      latency_idle   one job at a time to an idle worker, N samples; then what
                     --idle-streams idle Lease streams cost over --idle-seconds
    Latency is handler start minus the enqueue time carried in the payload (per call for
    enqueue_unary); p50/p90/p99/max in ms. Cost per job: Redis commands (counting those
    inside scripts) and script calls from INFO commandstats, Redis CPU from INFO cpu, and
    the CPU of the servers (every process of each), workers and producer from /proc (Linux)
    or as the outside producer reports it, over the jobs' enqueue and processing, without
    process start-up. The go, node and stub producers are built by bench/run (bench/.bin,
    clients/node/dist; JOBQ_BENCH_BIN and JOBQ_BENCH_NODE_CLIENT say where else to look).

    \b
    Without --scenario, the default suite: every scenario, then drain with payloads of
    100 B, 10 KiB and 512 KiB, with 1, 2 and 4 workers, windows of 16 to 1024 and 1 or 2
    servers. It prints a table; --out keeps everything as JSON.
      jobq bench --quick                       a smoke run
      jobq bench --out results.json            the full suite (a few minutes)
      jobq bench --scenario drain --jobs 20000 --workers 2 --json
    """
    from jobqueue_bench.suite import default_suite, scenario_defaults

    given = {name: value for name, value in knobs.items() if value is not None}
    if scenario is None and given:
        raise click.UsageError(f"--{next(iter(given)).replace('_', '-')} needs --scenario")
    _check_client(scenario, given)
    if scenario is not None:
        configs = [scenario_defaults(cast(Scenario, scenario), quick=quick).replace(**given)]
    else:
        configs = default_suite(quick=quick)
    logging.basicConfig(level=logging.WARNING, format="jobq bench: %(message)s")
    _run(configs, redis_url, timeout, as_json, out, progress=scenario is None)


def _check_client(scenario: str | None, given: dict[str, Any]) -> None:
    """The outside producers are enqueue_unary's, and each calls one address."""
    client = given.get("client", "python")
    if client != "python" and scenario != "enqueue_unary":
        raise click.UsageError("--client is enqueue_unary's")
    if client != "python" and given.get("servers", 1) > 1:
        raise click.UsageError(f"--client {client} calls one server: use --processes, not --servers")


def _run(
    configs: list[BenchConfig], redis_url: str | None, timeout: float, as_json: bool, out: Path | None,
    *, progress: bool,
) -> None:  # fmt: skip
    from rich.console import Console

    from jobqueue_bench import report
    from jobqueue_bench.processes import ChildFailed
    from jobqueue_bench.redis_cost import RedisUnreachable
    from jobqueue_bench.runner import run_measurements

    # SIGTERM (a driver's timeout) unwinds like Ctrl-C, so every child is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def started(config: BenchConfig) -> None:
        if progress:
            click.echo(f"jobq bench: {config.scenario} {config.label()}", err=True)

    try:
        results, versions = run_measurements(configs, redis_url, timeout, started)
    except (ChildFailed, RedisUnreachable, OSError) as error:
        raise click.ClickException(f"cannot start the benchmark: {error}") from error
    if as_json:
        for line in report.json_lines(results):
            click.echo(line)
    else:
        # Piped or redirected, the table keeps its rows whole rather than fitting 80 columns.
        report.print_table(results, versions, Console(width=None if sys.stdout.isatty() else WIDE))
    if out is not None:
        report.write_results(out, results, versions, sys.argv)
    if any(result.error is not None for result in results):
        raise click.exceptions.Exit(1)


COMMANDS: list[click.Command] = [bench]
