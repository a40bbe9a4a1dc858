"""What dependencies cost: enqueue with and without `depends_on`, a fan-out (one parent, N
children released together) and a fan-in (N parents, one child).

    .venv/bin/python bench/dependencies.py --children 10000 --parents 1000

Starts `jobq serve` on an embedded Valkey in a temporary folder and prints, for each step, the
time it took and the rate:
- enqueue of N plain jobs, then of N jobs depending on one parent (EnqueueBatch of 1,000);
- fan-out: from the parent's ack until every child is QUEUED (Stats: waiting 0);
- fan-in: a child of N parents (one job, at most 1,000 parents); the parents are drained by one
  worker, and the time from the last parent's ack until the child is QUEUED is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import grpc

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

BATCH = 1000


async def enqueue_all(stub: Stub, queue: str, count: int, parents: list[str]) -> float:
    began = time.perf_counter()
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        requests = [svc.EnqueueRequest(queue=queue, depends_on=parents) for _ in range(size)]
        await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))
    return time.perf_counter() - began


async def drain(stub: Stub, queue: str, count: int) -> float:
    """Leases and acks `count` jobs of `queue` on one stream; returns when the last ack is sent."""
    call: Any = stub.Lease()
    await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=[queue], max_in_flight=256)))
    done = 0
    while done < count:
        response = await call.read()
        acks = [svc.AckRequest(job_id=j.job.id, lease_token=j.lease_token) for j in response.jobs]
        if acks:
            await call.write(svc.LeaseRequest(acks=acks))
            done += len(acks)
    last_ack = time.perf_counter()
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass
    return last_ack


async def until_released(stub: Stub, queue: str, count: int) -> float:
    while True:
        stats = (await stub.Stats(svc.StatsRequest(queue=queue))).queues[0]
        if stats.waiting == 0 and stats.queued >= count:
            return time.perf_counter()
        await asyncio.sleep(0.002)


def line(what: str, seconds: float, count: int) -> None:
    print(f"{what:<58} {seconds * 1000:9.1f} ms  {count / seconds:10,.0f} jobs/s", flush=True)


async def run(port: int, children: int, parents: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Stub = svc_grpc.JobQueueServiceStub(channel)
        line(f"enqueue {children:,} plain jobs", await enqueue_all(stub, "plain", children, []), children)
        root = (await stub.Enqueue(svc.EnqueueRequest(queue="root"))).job_id
        line(
            f"enqueue {children:,} jobs depending on one parent",
            await enqueue_all(stub, "fan-out", children, [root]),
            children,
        )
        acked = await drain(stub, "root", 1)
        line(
            f"fan-out: parent acked -> {children:,} children queued",
            await until_released(stub, "fan-out", children) - acked,
            children,
        )

        await enqueue_all(stub, "fan-in-parents", parents, [])
        ids = [
            j.id
            for j in (
                await stub.ListJobs(
                    svc.ListJobsRequest(
                        queue="fan-in-parents", state=job_pb2.JOB_STATE_QUEUED, page_size=parents
                    )
                )
            ).jobs
        ]
        await stub.Enqueue(svc.EnqueueRequest(queue="fan-in", depends_on=ids))
        began = time.perf_counter()
        last_ack = await drain(stub, "fan-in-parents", parents)
        line(f"fan-in: {parents:,} parents drained by one stream", last_ack - began, parents)
        released = await until_released(stub, "fan-in", 1)
        print(
            f"{'fan-in: last parent acked -> the child queued':<58} {(released - last_ack) * 1000:9.1f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--parents", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "jobqueue_cli", "serve", "--port", "0", "--data-dir", data,
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            port = int(re.search(r":(\d+) ", server.stdout.readline()).group(1))  # type: ignore[union-attr]
            asyncio.run(run(port, args.children, min(args.parents, 1_000)))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
