"""Worker: leases jobs over one stream, runs their handlers, settles them, and reconnects.

::

    worker = Worker("localhost:50051", concurrency=8)

    @worker.handler("emails")
    async def send_email(payload: dict, ctx: JobContext) -> dict:
        ...
        return {"sent": True}

    worker.run_forever()  # until SIGTERM/SIGINT; a second signal stops at once
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import grpc
from opentelemetry.trace import TracerProvider

from jobqueue import convert, eventloop, tracing
from jobqueue.backoff import ReconnectBackoff
from jobqueue.channel import ChannelOption, aio_channel
from jobqueue.counters import WorkerCounters
from jobqueue.errors import InvalidArgument, JobQueueError, PermissionDenied, Unauthenticated, Unavailable
from jobqueue.execution import JobRunner
from jobqueue.handlers import Handler, HandlerRegistry
from jobqueue.models import DurabilityName
from jobqueue.security import Tls
from jobqueue.session import LeaseSession
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

logger = logging.getLogger(__name__)

HandlerT = TypeVar("HandlerT", bound=Handler)

# From the contract (EnqueueRequest.queue).
QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
QUEUE_NAME_GRAMMAR = "1 to 128 of letters, digits, '-', '_', '.' and ':'"
DEFAULT_CONCURRENCY = 10
DEFAULT_GRACE_PERIOD_S = 30.0


def _check_queue_names(queues: Sequence[str]) -> None:
    """Fails fast on names the server would refuse (the grammar is part of the contract)."""
    if not queues:
        raise InvalidArgument("subscribe to at least one queue", field="queues")
    for index, queue in enumerate(queues):
        if not QUEUE_NAME_RE.fullmatch(queue):
            raise InvalidArgument(
                f"queue name {queue!r} must be {QUEUE_NAME_GRAMMAR}", field=f"queues[{index}]"
            )


def default_worker_id() -> str:
    """host:pid:random, unique per process, shown on the jobs the worker holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs handlers for the jobs of some queues, at most `concurrency` at a time.

    Handlers receive ``(payload: dict, ctx: JobContext)``. Returning a dict (or None) acks
    the job with that result; raising fails the attempt (retried after the job's backoff),
    :class:`~jobqueue.errors.NonRetryableError` makes it dead at once and
    :class:`~jobqueue.errors.RetryAfter` sets the retry delay. Leases are extended while
    handlers run. After the connection drops the worker reconnects with exponential backoff
    and full jitter; handlers still running on the lost stream are cancelled (see
    :mod:`jobqueue.session`). A Worker runs once.
    """

    def __init__(
        self,
        target: str | grpc.aio.Channel,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        handlers: Mapping[str, Handler] | None = None,
        worker_id: str | None = None,
        lease_duration: timedelta | float | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD_S,
        reconnect: ReconnectBackoff | None = None,
        token: str | None = None,
        tls: Tls | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[ChannelOption] = (),
        ack_durability: DurabilityName | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._target = target
        self._token = token
        self._tls = tls
        self._credentials = credentials
        self._options = options
        self._queues = list(queues or [])
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.lease_duration = lease_duration
        self.grace_period = grace_period
        self.counters = WorkerCounters()
        self._backoff = reconnect or ReconnectBackoff()
        #: "fsynced": each ack returns only once the completion is on Redis's disk (docs/durability.md).
        self._ack_durability = convert.to_durability(ack_durability, "ack_durability")
        self._registry = HandlerRegistry()
        #: `process <queue>` spans around handlers (jobqueue.tracing); the global provider by default.
        self._tracer = tracing.Tracer(tracer_provider)
        for queue, handler in (handlers or {}).items():
            self._registry.add(queue, handler)
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._session: LeaseSession | None = None
        self._started = False

    # -- registration ----------------------------------------------------------------------

    def handler(self, queue: str, job_type: str | None = None) -> Callable[[HandlerT], HandlerT]:
        """Decorator: handle jobs of `queue` (only those whose payload["type"] is `job_type`)."""

        def register(handler: HandlerT) -> HandlerT:
            self.add_handler(queue, handler, job_type)
            return handler

        return register

    def add_handler(self, queue: str, handler: Handler, job_type: str | None = None) -> None:
        self._registry.add(queue, handler, job_type)

    @property
    def queues(self) -> list[str]:
        """The queues subscribed to: those given, else those with handlers."""
        return self._queues or self._registry.queues

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for (by :meth:`stop` or a signal)."""
        return self._stop.is_set()

    @property
    def running(self) -> int:
        """Handlers running now."""
        return self._session.running if self._session is not None else 0

    # -- running ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Blocks running the worker in a new event loop, stopping on SIGTERM or SIGINT."""
        eventloop.run(self.run(install_signal_handlers=True))

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Runs until :meth:`stop` (or a signal, when `install_signal_handlers`). Raises
        Unauthenticated or PermissionDenied when the server refuses its credentials: they
        would be refused again, so it does not reconnect."""
        if self._started:
            raise RuntimeError("a Worker runs once; create a new one")
        if not self._registry:
            raise ValueError("register at least one handler before running the worker")
        _check_queue_names(self.queues)
        self._started = True
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            self._install_signal_handlers(loop)
        channel = self._channel()
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="jobqueue-handler")
        try:
            stub: svc_grpc.JobQueueServiceAsyncStub = svc_grpc.JobQueueServiceStub(channel)
            await self._serve(stub, JobRunner(self._registry, executor, self._tracer))
        finally:
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            # Threads of abandoned sync handlers cannot be interrupted: do not wait for them.
            executor.shutdown(wait=False, cancel_futures=True)
            if channel is not self._target:
                await channel.close()
            logger.info("worker %s stopped: %s", self.worker_id, self.counters)

    def stop(self, *, now: bool = False) -> None:
        """Stops taking jobs and lets running handlers finish within the grace period; with
        `now`, abandons them at once. Call it from the event loop's thread (from another
        thread, use ``loop.call_soon_threadsafe(worker.stop)``)."""
        self._stop.set()
        if now:
            self._force.set()

    def _channel(self) -> grpc.aio.Channel:
        if isinstance(self._target, str):
            return aio_channel(
                self._target, self._credentials, self._options, token=self._token, tls=self._tls
            )
        return self._target

    def _subscription(self) -> svc.Subscribe:
        subscribe = svc.Subscribe(
            queues=self.queues, max_in_flight=self.concurrency, worker_id=self.worker_id
        )
        if self.lease_duration is not None:
            subscribe.lease_duration.CopyFrom(convert.to_duration(self.lease_duration, "lease_duration"))
        return subscribe

    async def _serve(self, stub: svc_grpc.JobQueueServiceAsyncStub, runner: JobRunner) -> None:
        loop = asyncio.get_running_loop()
        logger.info("worker %s serving %s with concurrency %d", self.worker_id, self.queues, self.concurrency)
        while not self._stop.is_set():
            subscription = self._subscription()
            self._session = LeaseSession(stub, subscription, runner, self.counters, self._ack_durability)
            started = loop.time()
            try:
                await self._session.run(self._stop, self._force, self.grace_period)
            except (Unauthenticated, PermissionDenied):
                raise  # the same credentials would be refused again: the operator must act
            except JobQueueError as error:
                self._log_disconnect(error)
            finally:
                self._session = None
                self._backoff.connection_ended(loop.time() - started)
            if self._stop.is_set():
                break
            delay = self._backoff.next_delay()
            logger.info("reconnecting in %.2f s", delay)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    @staticmethod
    def _log_disconnect(error: JobQueueError) -> None:
        if isinstance(error, Unavailable) or error.code == grpc.StatusCode.CANCELLED:
            logger.warning("lease stream lost: %s %s", error.code.name, error)
        else:
            # Also retried, but a bad queue name or window would fail again, so it is logged
            # loudly. (A draining server's SERVER_SHUTTING_DOWN is an Unavailable.)
            logger.error("lease stream refused: %s %s (field %s)", error.code.name, error, error.field)

    # -- signals ---------------------------------------------------------------------------

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            logger.warning("%s again: abandoning running jobs", sig.name)
            self.stop(now=True)
            return
        logger.info(
            "%s: finishing running jobs (up to %.0f s); repeat to stop at once", sig.name, self.grace_period
        )
        self.stop()
