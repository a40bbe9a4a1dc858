"""`jobq load`: fire many enqueues at once and report how long they took (the tutorial's load test)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from jobqueue import AsyncClient, JobSpec, eventloop
from jobqueue.errors import JobQueueError
from jobqueue_bench.measure import latency_summary
from jobqueue_cli.producer_io import (
    EXIT_FAILED,
    Conn,
    client_options,
    error_line,
    parse_object,
    stdout_console,
)


@dataclass
class LoadReport:
    """What one run did: jobs enqueued and failed, wall time, and each call's latency."""

    queue: str
    concurrency: int
    batch: int
    enqueued: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: JobQueueError | None = None

    @property
    def jobs_per_second(self) -> float:
        return self.enqueued / self.seconds if self.seconds else 0.0

    def latency_summary(self) -> dict[str, float]:
        """p50, p90, p99 and max of the calls' latency in ms (empty when no call was made)."""
        return latency_summary(self.latencies_ms)

    def document(self) -> dict[str, Any]:
        latency = {name: round(value, 3) for name, value in self.latency_summary().items()}
        return {
            "queue": self.queue, "jobs": self.enqueued, "failed": self.failed,
            "seconds": round(self.seconds, 6), "jobs_per_second": round(self.jobs_per_second, 1),
            "concurrency": self.concurrency, "batch": self.batch, "calls": len(self.latencies_ms),
            "latency_ms": latency,
        }  # fmt: skip


@click.command()
@click.argument("queue")
@click.option("--count", type=click.IntRange(min=1), default=100, show_default=True, help="Jobs to enqueue.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=100, show_default=True, help="Calls in flight."
)
@click.option("--payload", "payload_text", metavar="JSON", help="The payload of every job (default {}).")
@click.option(
    "--batch", type=click.IntRange(min=0, max=1000), default=0, show_default=True,
    help="Jobs per EnqueueBatch call; 0 sends one Enqueue call per job.",
)  # fmt: skip
@client_options
def load(conn: Conn, queue: str, count: int, concurrency: int, payload_text: str | None, batch: int) -> None:
    """Enqueue COUNT jobs to QUEUE with CONCURRENCY calls in flight; report time and jobs/s.

    \b
    The tutorial's load test, 100 concurrent enqueues:
      jobq load emails --count 100 --concurrency 100
    """
    payload = parse_object(payload_text, "payload") if payload_text is not None else {}
    report = LoadReport(queue, concurrency, batch)
    eventloop.run(_run(conn, report, count, payload))
    if report.first_error is not None:
        click.echo(f"{error_line(report.first_error, conn.target)} ({report.failed} jobs failed)", err=True)
    if conn.as_json:
        conn.emit(report.document())
    else:
        _print(report)
    if report.failed:
        raise click.exceptions.Exit(EXIT_FAILED)


Call = Callable[[], Awaitable[int]]


async def _run(conn: Conn, report: LoadReport, count: int, payload: dict[str, Any]) -> None:
    async with AsyncClient(conn.target, timeout=conn.timeout, token=conn.token, tls=conn.tls) as client:
        # Connect before the clock starts, so the figure measures enqueues, not the TCP handshake.
        await client.stats(report.queue)

        async def unary() -> int:
            await client.enqueue(report.queue, payload)
            return 1

        async def batch_of(size: int) -> int:
            return len(await client.enqueue_many([JobSpec(queue=report.queue, payload=payload)] * size))

        if report.batch:
            sizes = (min(report.batch, count - start) for start in range(0, count, report.batch))
            calls: Iterator[tuple[int, Call]] = ((size, functools.partial(batch_of, size)) for size in sizes)
        else:
            calls = ((1, unary) for _ in range(count))
        started = time.perf_counter()
        await _in_flight(calls, report)
        report.seconds = time.perf_counter() - started


async def _in_flight(calls: Iterator[tuple[int, Call]], report: LoadReport) -> None:
    """Runs the calls in `report.concurrency` lanes, recording each call's outcome and latency."""

    async def lane() -> None:
        for size, call in calls:  # the lanes share one iterator: each takes the next call
            began = time.perf_counter()
            try:
                done = await call()  # not `+= await`: that reads the total before the await
                report.enqueued += done
            except JobQueueError as error:  # counted and reported, so one refusal does not hide the rest
                report.failed += size
                report.first_error = report.first_error or error
            report.latencies_ms.append((time.perf_counter() - began) * 1000)

    async with asyncio.TaskGroup() as group:
        for _ in range(report.concurrency):
            group.create_task(lane())


def _print(report: LoadReport) -> None:
    mode = f"EnqueueBatch of {report.batch}" if report.batch else "unary Enqueue"
    latency = report.latency_summary()
    stdout_console().print(
        f"[green]enqueued[/] [bold]{report.enqueued}[/] jobs to {report.queue} in "
        f"[bold]{report.seconds:.3f} s[/]: [bold]{report.jobs_per_second:,.0f} jobs/s[/]\n"
        f"  {mode}, {report.concurrency} calls in flight, {len(report.latencies_ms)} calls; latency "
        f"p50 {latency.get('p50', 0):.1f} ms, p99 {latency.get('p99', 0):.1f} ms, "
        f"max {latency.get('max', 0):.1f} ms",
        highlight=False,
        soft_wrap=True,
    )


COMMANDS: list[click.Command] = [load]
