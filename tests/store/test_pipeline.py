"""The scripts' pipelined connection (store/pipeline.py) on a real Valkey: replies reach their
own callers, scripts reload after a flush, a killed connection is replaced, AUTH, and the same
under uvloop, whose transports differ from asyncio's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop
from redis.asyncio import Redis

from jobqueue_server.runtime.app import connect_redis
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store.cluster import script_calls

ECHO = "return {KEYS[1], ARGV[1]}"


async def _echo(redis: Redis, *, calls: int = 200) -> None:
    pipeline = script_calls(redis, 2.0)
    sha = await redis.script_load(ECHO)
    replies = await asyncio.gather(*(pipeline.evalsha(sha, ECHO, [f"k{i}"], [i]) for i in range(calls)))
    assert replies == [[f"k{i}".encode(), str(i).encode()] for i in range(calls)]


async def test_concurrent_calls_each_get_their_own_reply(redis: Redis) -> None:
    await _echo(redis)


async def test_a_script_flushed_from_redis_is_loaded_again(redis: Redis) -> None:
    pipeline = script_calls(redis, 2.0)
    sha = await redis.script_load(ECHO)
    await redis.script_flush()

    assert await pipeline.evalsha(sha, ECHO, ["k"], ["v"]) == [b"k", b"v"]


async def test_a_killed_connection_is_replaced_by_the_next_call(redis: Redis) -> None:
    pipeline = script_calls(redis, 2.0)
    sha = await redis.script_load(ECHO)
    await pipeline.evalsha(sha, ECHO, ["k"], ["before"])

    await redis.client_kill_filter(_type="normal", skipme=True)  # every client but this one
    await asyncio.sleep(0)  # let the pipeline see its connection go

    assert await pipeline.evalsha(sha, ECHO, ["k"], ["after"]) == [b"k", b"after"]


def test_it_works_on_uvloop_with_a_password(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path)
    url = valkey.start()

    async def run() -> None:
        admin = connect_redis(url, 2.0)
        await admin.config_set("requirepass", "s3cret")
        await admin.aclose()
        client = connect_redis(url.replace("redis://", "redis://:s3cret@"), 2.0)
        try:
            await _echo(client, calls=50)
        finally:
            await client.aclose()

    try:
        uvloop.run(run())
    finally:
        valkey.stop()


@pytest.mark.parametrize("password", ["", "wrong"])
def test_a_missing_or_wrong_password_is_refused(tmp_path: Path, password: str) -> None:
    from redis import exceptions

    valkey = EmbeddedValkey(tmp_path)
    url = valkey.start()

    async def run() -> None:
        admin = connect_redis(url, 2.0)
        await admin.config_set("requirepass", "s3cret")
        await admin.aclose()
        client = connect_redis(url.replace("redis://", f"redis://:{password}@") if password else url, 2.0)
        try:
            with pytest.raises(exceptions.ResponseError):
                await script_calls(client, 2.0).evalsha("0" * 40, ECHO, ["k"], ["v"])
        finally:
            await client.aclose()

    try:
        uvloop.run(run())
    finally:
        valkey.stop()
