"""Bounds on every Redis exchange, and the grouping of job ids by queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from redis import exceptions as redis_exceptions

from jobqueue_server.errors import StoreFull, StoreUnavailable
from jobqueue_server.ids import split_job_id


@asynccontextmanager
async def redis_errors(timeout_s: float) -> AsyncIterator[None]:
    """Bounds a Redis exchange in time and turns client failures into domain errors.

    The bound is asyncio's, not the client's socket_timeout: redis-py's own read timeout
    can swallow task cancellation (see tests/store/test_redis_client.py).
    """
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc or 'no answer in time'}") from exc
    except redis_exceptions.OutOfMemoryError as exc:
        raise StoreFull("redis is out of memory") from exc


class _Mapped:
    """`redis_errors` without the timer, for calls on the scripts' pipeline, which bounds its
    calls in time itself (store/pipeline.py): a plain class, cheap enough for every call."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: object) -> None:
        if isinstance(exc, redis_exceptions.ConnectionError | redis_exceptions.TimeoutError | OSError):
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc
        if isinstance(exc, redis_exceptions.OutOfMemoryError):
            raise StoreFull("redis is out of memory") from exc


MAPPED = _Mapped()


def group_by_queue(job_ids: Sequence[str]) -> tuple[dict[str, list[tuple[int, str]]], list[int]]:
    """Indexes of well-formed ids grouped by queue, and the indexes of malformed ones."""
    groups: dict[str, list[tuple[int, str]]] = {}
    malformed: list[int] = []
    for index, job_id in enumerate(job_ids):
        parts = split_job_id(job_id)
        if parts is None:
            malformed.append(index)
        else:
            groups.setdefault(parts[0], []).append((index, parts[1]))
    return groups, malformed
