"""RQ peer: `Queue.enqueue` / `Queue.enqueue_many`, drained by `SimpleWorker` processes.

RQ's default `Worker` forks a work horse per job (about 100 jobs/s on this VM); `SimpleWorker` runs
the job in the worker process itself, which is what a throughput comparison should use.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import peerlib
from redis import Redis
from rq import Queue, SimpleWorker

QUEUE = "bench"
# By import path, not `noop` itself: run as a script this module is __main__ in the producer.
JOB = "bench_rq.noop"


def noop(payload: dict[str, Any]) -> None:
    st = peerlib.JobStats.get()
    st.start(payload)
    st.end()


class Producer(peerlib.SyncProducer):
    def __init__(self, args: argparse.Namespace) -> None:
        # One pooled client shared by the threads; redis-py's pool is thread-safe.
        self.redis = Redis.from_url(args.redis_url, max_connections=max(10, args.in_flight + 2))
        self.queue = Queue(QUEUE, connection=self.redis)

    def warmup(self) -> None:
        self.redis.ping()

    def enqueue_one(self, payload: dict[str, Any]) -> None:
        self.queue.enqueue(JOB, payload)

    def enqueue_many(self, payloads: list[dict[str, Any]]) -> None:
        self.queue.enqueue_many([Queue.prepare_data(JOB, (p,)) for p in payloads])

    def close(self) -> None:
        self.redis.close()


class BenchWorker(SimpleWorker):
    def bootstrap(self, *a: Any, **kw: Any) -> None:
        super().bootstrap(*a, **kw)
        peerlib.JobStats.get().ready()  # registered and about to dequeue


def run_worker(args: argparse.Namespace, index: int) -> None:
    redis = Redis.from_url(args.redis_url)
    w = BenchWorker([Queue(QUEUE, connection=redis)], connection=redis, log_job_description=False)
    # WARNING: no per-job log lines (like `rq worker -q`).
    w.work(logging_level="WARNING")


def notes(args: argparse.Namespace) -> str:
    n = (
        "RQ SimpleWorker (job runs in the worker process; the default fork-per-job Worker does about "
        "100 jobs/s here), one job at a time per process, so --concurrency is ignored; "
        f"{args.workers} worker process(es) via the Python API (Worker.work, not burst), log level WARNING, "
        "job description logging off; RQ defaults otherwise (result_ttl 500 s, job hash + registries)."
    )
    if args.scenario == "enqueue_unary":
        n += f" Queue.enqueue is sync: {args.in_flight} threads sharing one redis-py pool."
    if args.scenario in ("enqueue_batch", "drain", "end_to_end"):
        n += f" Batches: Queue.enqueue_many of {args.batch} jobs (one pipeline)."
    return n


PEER = peerlib.Peer(
    system="rq",
    dists=("rq", "redis", "hiredis"),
    make_producer=Producer,
    run_worker=run_worker,
    notes=notes,
)

if __name__ == "__main__":
    peerlib.main(PEER, __file__)
