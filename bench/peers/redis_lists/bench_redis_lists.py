"""Plain Redis lists, the tutorial design: no library, redis-py asyncio (hiredis parser).

Producer: `SETEX job:<id> <ttl> <json>` first, then `LPUSH queue <id>` (pushing the id first lets an
idle worker pop it before the body exists). Batches: one pipeline of B SETEX and one LPUSH of B ids.
Worker: `BLMOVE queue processing RIGHT LEFT 0` (FIFO with LPUSH), `GET job:<id>`, run the no-op,
`SET status:<id> done`, `LREM processing 1 <id>`: 5 round trips per job, one at a time per loop.
Each worker process runs C such loops on one event loop (a pool of C connections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import peerlib
import redis.asyncio as aioredis

# SETEX through execute_command: redis-py 8 deprecates its setex() helper (warning per call).
QUEUE = "queue"
PROCESSING = "processing"
JOB_TTL_S = 3600


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Producer(peerlib.AsyncProducer):
    def __init__(self, args: argparse.Namespace) -> None:
        self.r = aioredis.Redis.from_url(args.redis_url, max_connections=max(1, args.in_flight) + 2)

    async def warmup(self) -> None:
        await self.r.ping()

    async def enqueue_one(self, payload: dict[str, Any]) -> None:
        jid = uuid.uuid4().hex
        await self.r.execute_command("SETEX", f"job:{jid}", JOB_TTL_S, _dumps(payload))
        await self.r.lpush(QUEUE, jid)

    async def enqueue_many(self, payloads: list[dict[str, Any]]) -> None:
        ids = [uuid.uuid4().hex for _ in payloads]
        async with self.r.pipeline(transaction=False) as pipe:
            for jid, p in zip(ids, payloads, strict=True):
                pipe.execute_command("SETEX", f"job:{jid}", JOB_TTL_S, _dumps(p))
            pipe.lpush(QUEUE, *ids)
            await pipe.execute()

    async def close(self) -> None:
        await self.r.aclose()


def handler(payload: dict[str, Any]) -> None:
    st = peerlib.JobStats.get()
    st.start(payload)
    st.end()


async def _loop(r: aioredis.Redis) -> None:
    while True:
        jid: str | None = await r.blmove(QUEUE, PROCESSING, 0, "RIGHT", "LEFT")
        if jid is None:  # only with a non-zero timeout
            continue
        body = await r.get(f"job:{jid}")
        if body is not None:  # expired body: nothing to run
            handler(json.loads(body))
        await r.set(f"status:{jid}", "done")
        await r.lrem(PROCESSING, 1, jid)


async def _worker(args: argparse.Namespace) -> None:
    c = max(1, args.concurrency)
    # Each loop blocks in BLMOVE on its own connection, so the pool needs C connections.
    r = aioredis.Redis.from_url(args.redis_url, max_connections=c, decode_responses=True)
    await r.ping()
    peerlib.JobStats.get().ready()
    await asyncio.gather(*(_loop(r) for _ in range(c)))


def run_worker(args: argparse.Namespace, index: int) -> None:
    asyncio.run(_worker(args))  # runs until the parent's SIGTERM


def notes(args: argparse.Namespace) -> str:
    n = (
        f"plain lists, {args.workers} process(es) x {args.concurrency} asyncio loops "
        "(redis-py asyncio + hiredis); SETEX body then LPUSH id; BLMOVE queue->processing, GET, no-op, "
        "SET status, LREM: 5 round trips/job, "
        "no retries, no reaper for stuck ids in `processing`, no events."
    )
    if args.scenario in ("enqueue_batch", "drain", "end_to_end"):
        n += f" Batches: one pipeline of {args.batch} SETEX + one multi-id LPUSH."
    if args.scenario == "enqueue_unary":
        n += f" Unary: {args.in_flight} coroutines in flight, 2 round trips per job."
    return n


PEER = peerlib.Peer(
    system="redis_lists",
    dists=("redis", "hiredis"),
    make_producer=Producer,
    run_worker=run_worker,
    notes=notes,
)

if __name__ == "__main__":
    peerlib.main(PEER, __file__)
