"""The six scenarios of bench/PROTOCOL.md, each one measurement on a running deployment.

Cost windows: the Redis, server and worker readings cover what the scenario's jobs cause,
their enqueue and (when workers run) their processing, and leave out process start-up and
warm-up jobs. For drain that is wider than the timed window, which starts at the first
handler start; workers are started (imports done) before the readings and idle until told
to go, so their start-up is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from jobqueue_bench.config import CONNECTIONS_PER_PROCESS, BenchConfig, Scenario
from jobqueue_bench.cost import CostMeter
from jobqueue_bench.deployment import Deployment
from jobqueue_bench.fleet import Fleet
from jobqueue_bench.idle import IdleSetup, measure_idle
from jobqueue_bench.measure import process_tree, rounded_summary
from jobqueue_bench.producer import Producer
from jobqueue_bench.results import Result
from jobqueue_bench.stats import WorkerStats
from jobqueue_bench.unary import COMMON_NOTE, MAX_ENQUEUE_WARMUP, enqueue_unary

IDLE_GAP_S = 0.020  # latency_idle: the next job 20 ms after the previous one completed
IDLE_POLL_S = 0.001


@dataclass
class Run:
    """What one measurement works with."""

    deployment: Deployment
    config: BenchConfig
    queue: str
    folder: Path
    timeout: float

    @property
    def targets(self) -> list[str]:
        return self.deployment.targets[: self.config.servers]

    def producer(self) -> Producer:
        return Producer(self.targets, self.queue, self.config.payload_bytes)

    def fleet(self, flush_ms: float = 20.0) -> Fleet:
        return Fleet(
            self.targets, self.queue, workers=self.config.workers,
            concurrency=self.config.concurrency, folder=self.folder, flush_ms=flush_ms,
        )  # fmt: skip

    def server_pids(self) -> list[int]:
        """Every server process: each `jobq serve`, and the servers it supervises (--processes)."""
        servers = self.deployment.servers[: self.config.servers]
        return [pid for server in servers for pid in process_tree(server.child.pid)]

    def meter(self, fleet: Fleet | None, *, producer_is_self: bool = False) -> CostMeter:
        assert self.deployment.probe is not None
        return CostMeter(
            self.deployment.probe, self.server_pids(), fleet.pids if fleet else [],
            producer_is_self=producer_is_self,
        )  # fmt: skip

    def idle_setup(self) -> IdleSetup:
        assert self.deployment.probe is not None
        return IdleSetup(
            self.targets, CONNECTIONS_PER_PROCESS * self.config.processes, self.server_pids(),
            self.deployment.probe, self.deployment.key_prefix,
        )  # fmt: skip

    async def wait_for_jobs(self, fleet: Fleet, jobs: int, poll_s: float = 0.02) -> WorkerStats:
        return await fleet.wait_until(lambda s: s.count >= jobs, f"run {jobs} jobs", self.timeout, poll_s)

    def workers_note(self) -> str:
        c = self.config
        return (
            f"{c.workers} worker process(es), jobqueue.Worker with concurrency (Lease window) "
            f"{c.concurrency}, no-op async handler; {c.servers} jobq serve process(es)"
            + (f" of {c.processes} server processes each" if c.processes > 1 else "")
        )


async def enqueue_batch(run: Run) -> Result:
    c = run.config
    async with run.producer() as producer:
        await producer.batches(min(MAX_ENQUEUE_WARMUP, c.jobs), c.batch)
        meter = run.meter(None, producer_is_self=True)
        meter.start()
        began = time.perf_counter()
        latencies = await producer.batches(c.jobs, c.batch)
        seconds = time.perf_counter() - began
        cost = meter.stop(c.jobs)
    note = (
        f"AsyncClient.enqueue_many of {c.batch}, one call in flight per server; latency per call; "
        "producer CPU: this process's own over the measurement (it only enqueues then)"
    )
    return Result(c, c.jobs, seconds, rounded_summary(latencies), cost, f"{note}; {COMMON_NOTE}")


async def drain(run: Run) -> Result:
    c = run.config
    fleet = run.fleet()
    try:
        await asyncio.to_thread(fleet.start)
        async with run.producer() as producer:
            meter = run.meter(fleet)
            meter.start()
            await producer.batches(c.jobs, c.batch)
            fleet.go()
            stats = await run.wait_for_jobs(fleet, c.jobs)
            cost = meter.stop(c.jobs)
    finally:
        fleet.stop()
    assert stats.first_start is not None and stats.last_end is not None
    note = f"{run.workers_note()}; timed from the first handler start to the last handler end"
    return Result(c, c.jobs, stats.last_end - stats.first_start, None, cost, f"{note}; {COMMON_NOTE}")


async def _started_fleet(run: Run, producer: Producer, flush_ms: float = 20.0) -> Fleet:
    """Workers running, connected and idle, with a few warm-up jobs behind them."""
    fleet = run.fleet(flush_ms)
    try:
        await asyncio.to_thread(fleet.start)
        fleet.go()
        await fleet.wait_until(lambda _: fleet.all_connected(), "connect", run.timeout)
        warmups = 2 * run.config.workers
        await producer.warmup(warmups)
        await fleet.wait_until(lambda s: s.warmups >= warmups, "run the warm-up jobs", run.timeout)
    except BaseException:
        fleet.stop()
        raise
    return fleet


async def end_to_end(run: Run) -> Result:
    c = run.config
    async with run.producer() as producer:
        fleet = await _started_fleet(run, producer)
        try:
            meter = run.meter(fleet)
            meter.start()
            began = time.time()
            await producer.batches(c.jobs, c.batch)
            stats = await run.wait_for_jobs(fleet, c.jobs)
            cost = meter.stop(c.jobs)
        finally:
            fleet.stop()
    assert stats.last_end is not None
    note = (
        f"{run.workers_note()}; enqueue_many of {c.batch}; "
        "timed from the first enqueue to the last handler end"
    )
    return Result(c, c.jobs, stats.last_end - began, None, cost, f"{note}; {COMMON_NOTE}")


async def latency_rate(run: Run) -> Result:
    c = run.config
    jobs = c.job_count
    async with run.producer() as producer:
        fleet = await _started_fleet(run, producer)
        try:
            meter = run.meter(fleet)
            meter.start()
            began = time.time()
            await producer.paced(jobs, c.rate)
            stats = await run.wait_for_jobs(fleet, jobs)
            cost = meter.stop(jobs)
        finally:
            final = fleet.stop()
    assert stats.last_end is not None
    note = f"{run.workers_note()}; single enqueues at {c.rate}/s; latency = handler start - payload t"
    latency = rounded_summary(final.latencies_ms)
    return Result(c, jobs, stats.last_end - began, latency, cost, f"{note}; {COMMON_NOTE}")


async def latency_idle(run: Run) -> Result:
    c = run.config
    async with run.producer() as producer:
        fleet = await _started_fleet(run, producer, flush_ms=0.0)
        try:
            meter = run.meter(fleet)
            meter.start()
            began = time.time()
            for index in range(c.jobs):
                await producer.one(index)
                stats = await run.wait_for_jobs(fleet, index + 1, IDLE_POLL_S)
                await asyncio.sleep(IDLE_GAP_S)
            cost = meter.stop(c.jobs)
        finally:
            final = fleet.stop()
    assert stats.last_end is not None
    note = (
        f"{run.workers_note()}; one job at a time, the next {IDLE_GAP_S * 1000:.0f} ms after the last "
        "completed; latency = handler start - payload t"
    )
    latency = rounded_summary(final.latencies_ms)
    result = Result(c, c.jobs, stats.last_end - began, latency, cost, f"{note}; {COMMON_NOTE}")
    if c.idle_streams > 0:
        idle = await measure_idle(run.idle_setup(), c.idle_streams, c.idle_seconds, run.queue)
        result.idle = idle.document()
        result.notes += f"; {idle.note()}"
    return result


RUNNERS: dict[Scenario, Callable[[Run], Awaitable[Result]]] = {
    "enqueue_unary": enqueue_unary,
    "enqueue_batch": enqueue_batch,
    "drain": drain,
    "end_to_end": end_to_end,
    "latency_rate": latency_rate,
    "latency_idle": latency_idle,
}
