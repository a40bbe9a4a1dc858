"""arq peer: `ArqRedis.enqueue_job` with F coroutines in flight, asyncio `Worker` processes.

Tuned config: max_jobs = C and poll_delay = 0.01 s. arq's default (max_jobs 10, poll_delay 0.5 s) is
poll-bound: a worker reads at most max(max_jobs*5, 100) ids per poll, about 200 jobs/s and a 0.3 s
median latency here. arq has no batch enqueue.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import peerlib
from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings

POLL_DELAY_S = 0.01


async def noop(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
    st = peerlib.JobStats.get()
    st.start(payload)
    st.end()


class Producer(peerlib.AsyncProducer):
    def __init__(self, args: argparse.Namespace) -> None:
        self.settings = RedisSettings.from_dsn(args.redis_url)
        self.pool: ArqRedis | None = None

    async def warmup(self) -> None:
        self.pool = await create_pool(self.settings)  # connects and pings

    async def enqueue_one(self, payload: dict[str, Any]) -> None:
        assert self.pool is not None
        await self.pool.enqueue_job("noop", payload)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


async def _on_startup(ctx: dict[str, Any]) -> None:
    peerlib.JobStats.get().ready()


def run_worker(args: argparse.Namespace, index: int) -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    w = Worker(
        functions=[noop],
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        max_jobs=args.concurrency,
        poll_delay=POLL_DELAY_S,
        on_startup=_on_startup,
    )
    w.run()  # logging is not configured, so arq's per-job INFO lines go nowhere


def notes(args: argparse.Namespace) -> str:
    n = (
        f"arq tuned: max_jobs={args.concurrency} (= --concurrency), poll_delay={POLL_DELAY_S} s; "
        "the default config (max_jobs 10, poll_delay 0.5 s) is poll-bound (about 200 jobs/s, 0.3 s latency). "
        f"{args.workers} Worker process(es) via the Python API, logging not configured "
        "(the CLI logs 2 lines/job); "
        "arq defaults otherwise (keep_result 3600 s, job id uuid4, enqueue is a WATCH/MULTI transaction)."
    )
    if args.scenario in ("enqueue_unary", "drain", "end_to_end"):
        n += f" No batch enqueue API: enqueue_job with {args.in_flight} coroutines in flight on one pool."
    return n


PEER = peerlib.Peer(
    system="arq",
    dists=("arq", "redis", "hiredis"),
    make_producer=Producer,
    run_worker=run_worker,
    notes=notes,
    batch=False,
    batch_skip="arq has no batch enqueue API (enqueue_job only)",
)

if __name__ == "__main__":
    peerlib.main(PEER, __file__)
