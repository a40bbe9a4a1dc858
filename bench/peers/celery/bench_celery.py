"""Celery peer: Redis broker, no result backend, `ignore_result=True`, `-P solo` worker processes.

Worker flags as measured before on this box: --without-gossip --without-mingle --without-heartbeat
-P solo (the fastest pool here; prefork/threads were slower for a no-op). Celery has no batch publish
API (a group publishes one message per task), so enqueue_batch is skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import peerlib
from celery import Celery
from celery.signals import worker_ready

QUEUE = "bench"


def _redis_url() -> str:
    # The app is built at import time (the worker imports this module too), so read --redis-url early.
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--redis-url" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--redis-url="):
            return a.split("=", 1)[1]
    return "redis://127.0.0.1:6379/0"


app = Celery("bench", broker=_redis_url())
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop", ignore_result=True)
def noop(payload: dict[str, Any]) -> None:
    st = peerlib.JobStats.get()
    st.start(payload)
    st.end()


@worker_ready.connect
def _ready(**_: Any) -> None:
    peerlib.JobStats.get().ready()


class Producer(peerlib.SyncProducer):
    def __init__(self, args: argparse.Namespace) -> None:
        # F threads publish at once: let the producer pool hold F connections (default limit 10).
        app.conf.broker_pool_limit = max(10, args.in_flight)

    def warmup(self) -> None:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection()

    def enqueue_one(self, payload: dict[str, Any]) -> None:
        noop.apply_async((payload,))

    def close(self) -> None:
        app.pool.force_close_all()


def run_worker(args: argparse.Namespace, index: int) -> None:
    app.worker_main(
        [
            "worker",
            "-l",
            "WARNING",
            "-P",
            "solo",
            "-n",
            f"w{index}@bench",
            "-Q",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def notes(args: argparse.Namespace) -> str:
    n = (
        f"Celery {args.workers} worker process(es), -P solo (one task at a time, --concurrency ignored), "
        "--without-gossip --without-mingle --without-heartbeat, -l WARNING; Redis broker (kombu), "
        "no result backend, ignore_result=True, early ack (default), prefetch multiplier 4 (default)."
    )
    if args.scenario in ("enqueue_unary", "drain", "end_to_end"):
        n += (
            f" No batch publish API: apply_async is sync, {args.in_flight} threads "
            f"(broker_pool_limit raised to {max(10, args.in_flight)})."
        )
    return n


PEER = peerlib.Peer(
    system="celery",
    dists=("celery", "kombu", "redis", "hiredis"),
    make_producer=Producer,
    run_worker=run_worker,
    notes=notes,
    batch=False,
    batch_skip="Celery has no batch publish API (group/chunks publish one message per task)",
)

if __name__ == "__main__":
    peerlib.main(PEER, __file__)
