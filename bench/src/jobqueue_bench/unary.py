"""enqueue_unary: N jobs, one enqueue call each, 64 in flight, from one of four producers.

- python: jobqueue.AsyncClient.enqueue from this process (batching on, as by default);
  the producer's CPU is this process's own over the measurement (it does nothing else then).
- go, node: clients/go's cmd/enqueue-load and the TypeScript client (enqueue_node.mjs), both
  with their batching on, as by default.
- stub: bench/loadgen, raw unary Enqueue calls from a generic stub (nothing to batch).

The outside producers warm up on their own, so their server and Redis cost covers their whole
run and is divided by every job they enqueued (counted on the queue afterwards); their CPU is
what they report over their measurement, per measured job.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from jobqueue import AsyncClient
from jobqueue_bench.external import ToolFailed, command, parse, run_tool
from jobqueue_bench.measure import rounded_summary
from jobqueue_bench.results import Result

if TYPE_CHECKING:
    from jobqueue_bench.scenarios import Run

MAX_ENQUEUE_WARMUP = 100
COMMON_NOTE = "cost covers the jobs' enqueue and processing, not process start-up or warm-up"
PRODUCERS = {
    "go": "Go client (clients/go, cmd/enqueue-load): Client.Enqueue from {f} goroutines, batching on",
    "node": "TypeScript client (clients/node): Client.enqueue from {f} concurrent loops, batching on",
    "stub": "bench/loadgen: raw unary Enqueue from a generic stub, {f} calls in flight",
}


async def python_unary(run: Run) -> Result:
    c = run.config
    async with run.producer() as producer:
        await producer.unary(min(MAX_ENQUEUE_WARMUP, c.jobs), c.in_flight)
        meter = run.meter(None, producer_is_self=True)
        meter.start()
        began = time.perf_counter()
        latencies = await producer.unary(c.jobs, c.in_flight)
        seconds = time.perf_counter() - began
        cost = meter.stop(c.jobs)
    note = (
        f"AsyncClient.enqueue (batching on, the default), {c.in_flight} calls in flight over "
        f"{c.servers} server(s); latency per call; producer CPU: this process's own over the "
        f"measurement (it only enqueues then)"
    )
    return Result(c, c.jobs, seconds, rounded_summary(latencies), cost, f"{note}; {COMMON_NOTE}")


async def outside_unary(run: Run) -> Result:
    c = run.config
    argv = command(c, run.targets[0], run.queue)
    meter = run.meter(None)
    meter.start()
    line = await asyncio.to_thread(run_tool, argv, run.timeout)
    readings = meter.take()
    tool = parse(c.client, line)
    enqueued = await queued(run.targets[0], run.queue)
    if enqueued < tool.jobs:
        raise ToolFailed(f"the queue holds {enqueued} jobs, fewer than the {tool.jobs} reported")
    cost = readings.per_job(enqueued, producer_cpu_s=tool.cpu_seconds, producer_jobs=tool.jobs)
    note = (
        f"{PRODUCERS[c.client].format(f=c.in_flight)}; {tool.detail}; "
        f"{c.processes} server process(es) on one port; latency per call"
        f"{'' if tool.latency_ms else ' not reported'}; producer CPU as the producer reports it over "
        f"its measurement; server and Redis cost over its whole run, per job enqueued "
        f"({enqueued}, its warm-up included)"
    )
    result = Result(c, tool.jobs, tool.seconds, tool.latency_ms, cost, note)
    result.extra.update(producer_report=line, jobs_enqueued=enqueued)
    return result


async def queued(target: str, queue: str) -> int:
    """The ready jobs of `queue`: with no worker, every job the producer enqueued."""
    async with AsyncClient(target, batching=None) as client:
        stats = await client.stats(queue)
    return sum(entry.queued for entry in stats if entry.queue == queue)


async def enqueue_unary(run: Run) -> Result:
    return await (python_unary(run) if run.config.client == "python" else outside_unary(run))
