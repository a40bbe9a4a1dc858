"""Handler types and the registry that routes a job to one: by queue, then payload["type"]."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from jobqueue.context import JobContext

HandlerResult: TypeAlias = Mapping[str, Any] | None
AsyncHandler: TypeAlias = Callable[[dict[str, Any], JobContext], Awaitable[HandlerResult]]
SyncHandler: TypeAlias = Callable[[dict[str, Any], JobContext], HandlerResult]
#: ``async def`` handlers run on the event loop; plain ``def`` ones run in a worker thread.
Handler: TypeAlias = AsyncHandler | SyncHandler
#: The payload key that selects a handler registered with a ``job_type``.
TYPE_KEY = "type"


@dataclass(frozen=True, slots=True)
class Registered:
    handler: Handler
    is_async: bool


def is_async_handler(handler: Handler) -> bool:
    """True for ``async def`` functions (and partials of them, and objects with one as __call__)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - a callable object's async __call__
    )


class HandlerRegistry:
    """Handlers by (queue, job type); a handler with no job type takes the queue's other jobs."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], Registered] = {}

    def add(self, queue: str, handler: Handler, job_type: str | None = None) -> None:
        key = (queue, job_type)
        if key in self._handlers:
            what = f"queue {queue!r}" + (f", type {job_type!r}" if job_type else "")
            raise ValueError(f"a handler for {what} is already registered")
        self._handlers[key] = Registered(handler, is_async_handler(handler))

    def resolve(self, queue: str, payload: Mapping[str, Any]) -> Registered | None:
        job_type = payload.get(TYPE_KEY)
        if isinstance(job_type, str) and (queue, job_type) in self._handlers:
            return self._handlers[(queue, job_type)]
        return self._handlers.get((queue, None))

    @property
    def queues(self) -> list[str]:
        """The queues handlers were registered for, in registration order."""
        return list(dict.fromkeys(queue for queue, _ in self._handlers))

    def __bool__(self) -> bool:
        return bool(self._handlers)
