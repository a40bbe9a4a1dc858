"""The Redis client library must let cancelled tasks end: shutdown and stream release rely on it."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis


async def test_a_task_cancelled_during_redis_calls_ends(redis: Redis) -> None:
    async def busy() -> None:
        while True:
            await redis.ping()

    stuck = 0
    for _ in range(20):
        task = asyncio.create_task(busy())
        await asyncio.sleep(0.003)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        stuck += not done
        if not done:  # a second cancel usually lands; leave nothing running
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)

    assert stuck == 0, f"{stuck} of 20 cancelled tasks kept running"
