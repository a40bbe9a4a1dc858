"""What idle workers cost: S Lease streams, each subscribed to 64 empty queues, over a window.

The streams are raw: the generated stub, a Subscribe, then nothing (no client library, so no
keep-alive or poll of ours is counted). Two layouts, one window each:

- shared: every stream names the same 64 queues (a fleet of workers of one application);
- distinct: each stream names 64 queues of its own (S x 64 queues: the most subscriptions
  and waiters the server can be asked to hold for S streams).

Once the server has subscribed to every queue's signal channel (PUBSUB NUMSUB on the Redis)
and a second has passed, the CPU of the server processes and of Redis and the Redis commands
are read over the window. After both, the streams are closed and the server must let go of
the channels: it does so about 10 s after a queue's last watcher left, so PUBSUB CHANNELS and
NUMPAT are polled until they are back to what they were before the streams opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_bench.fleet import BenchTimeout
from jobqueue_bench.measure import CpuMeter
from jobqueue_bench.redis_cost import RedisProbe, RedisUsage
from jobqueue_server.store.keys import QueueKeys

QUEUES_PER_STREAM = 64  # the most one Subscribe may name
LAYOUTS = ("shared", "distinct")
SUBSCRIBE_WAIT_S = 30.0
RELEASE_WAIT_S = 40.0  # the server lets go about 10 s after the last watcher; a margin for busy cores
POLL_S = 0.1
# After the last subscription: the streams' first (empty) lease attempts, and the two maintenance
# passes that look once at each newly subscribed queue for a signal missed while subscribing
# (one sweep interval apart, 1 s by default), are the cost of subscribing, not of idling.
SETTLE_S = 2.5
# Separate connections (grpc shares one between equal channels otherwise), so the kernel
# spreads the streams over the processes of a `--processes N` server.
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
Call: TypeAlias = "grpc.aio.StreamStreamCall[svc.LeaseRequest, svc.LeaseResponse]"


@dataclass(frozen=True)
class Window:
    """One layout's figures over the window; CPU in percent of one core."""

    queues: int
    server_cpu_percent: float | None  # None off Linux
    redis_cpu_percent: float
    total_cpu_percent: float | None
    redis_commands_per_second: float
    subscribe_seconds: float
    top_commands: dict[str, int]  # over the window: what the idle cost is made of


@dataclass
class IdleCost:
    streams: int
    queues_per_stream: int
    window_seconds: float
    server_processes: int
    layouts: dict[str, Window] = field(default_factory=dict)
    channels_before: int = 0
    channels_after: int = 0
    numpat_before: int = 0
    numpat_after: int = 0
    released: bool = False
    release_seconds: float | None = None

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = _rounded(asdict(self))
        return document

    def note(self) -> str:
        costs = "; ".join(
            f"{name} ({w.queues} queues) {_percent(w.total_cpu_percent)} of a core (server "
            f"{_percent(w.server_cpu_percent)}, Valkey {w.redis_cpu_percent:.2f}%, "
            f"{w.redis_commands_per_second:,.1f} Redis cmds/s)"
            for name, w in self.layouts.items()
        )
        released = f"released after {self.release_seconds:.1f} s" if self.released else "NOT released"
        return (
            f"idle: {self.streams} raw Lease streams x {self.queues_per_stream} queues over "
            f"{self.window_seconds:g} s: {costs}; subscriptions {released}"
        )


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 3) if isinstance(value, float) else value


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


@dataclass
class IdleSetup:
    targets: Sequence[str]  # the servers' addresses, streams spread over them in turn
    connections: int  # per target
    server_pids: Sequence[int]
    probe: RedisProbe
    key_prefix: str


def queue_names(layout: str, streams: int, tag: str) -> list[list[str]]:
    """Each stream's queues: the same 64 for all (shared), or 64 of its own (distinct)."""
    own = layout == "distinct"
    return [
        [f"idle.{tag}.{layout}.{s if own else 0}.{q}" for q in range(QUEUES_PER_STREAM)]
        for s in range(streams)
    ]


async def measure_idle(setup: IdleSetup, streams: int, window_s: float, tag: str) -> IdleCost:
    cost = IdleCost(streams, QUEUES_PER_STREAM, window_s, len(setup.server_pids))
    cost.channels_before, cost.numpat_before = setup.probe.channels(), setup.probe.numpat()
    signals: set[str] = set()
    for layout in LAYOUTS:
        queues = queue_names(layout, streams, tag)
        mine = sorted({QueueKeys.of(setup.key_prefix, q).signal for names in queues for q in names})
        signals.update(mine)
        cost.layouts[layout] = await _layout_window(setup, queues, mine, window_s)
    closed = time.monotonic()
    cost.released = await _released(setup.probe, sorted(signals), cost.channels_before, cost.numpat_before)
    cost.release_seconds = time.monotonic() - closed if cost.released else None
    cost.channels_after, cost.numpat_after = setup.probe.channels(), setup.probe.numpat()
    return cost


async def _layout_window(
    setup: IdleSetup, queues: list[list[str]], signals: list[str], window_s: float
) -> Window:
    """Opens the streams, waits for the server's subscriptions, reads the window, closes them."""
    channels = [
        grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        for target in setup.targets
        for _ in range(setup.connections)
    ]
    calls: list[Call] = []
    try:
        began = time.monotonic()
        for index, names in enumerate(queues):
            calls.append(await _subscribe(channels[index % len(channels)], names, index))
        await _wait_until(lambda: min(setup.probe.subscribers(signals)) > 0, "subscribe", SUBSCRIBE_WAIT_S)
        subscribed_s = time.monotonic() - began
        await asyncio.sleep(SETTLE_S)
        server, usage = await _window(setup, window_s)
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*(channel.close() for channel in channels))
    total = None if server is None else server + usage.cpu_seconds
    return Window(
        queues=len(signals),
        server_cpu_percent=None if server is None else 100 * server / window_s,
        redis_cpu_percent=100 * usage.cpu_seconds / window_s,
        total_cpu_percent=None if total is None else 100 * total / window_s,
        redis_commands_per_second=usage.commands / window_s,
        subscribe_seconds=subscribed_s,
        top_commands=dict(usage.top_commands),
    )


async def _subscribe(channel: grpc.aio.Channel, queues: list[str], index: int) -> Call:
    """A Lease stream subscribed to `queues`, once the server has accepted it (its empty reply)."""
    stub = svc_grpc.JobQueueServiceStub(channel)
    call: Call = stub.Lease()
    subscribe = svc.Subscribe(queues=queues, max_in_flight=1, worker_id=f"bench-idle-{index}")
    await call.write(svc.LeaseRequest(subscribe=subscribe))
    reply = await call.read()
    if reply is grpc.aio.EOF:
        raise BenchTimeout(f"the server ended idle stream {index} at once: {await call.details()}")
    return call


async def _window(setup: IdleSetup, window_s: float) -> tuple[float | None, RedisUsage]:
    """Server CPU seconds (None off Linux) and what Redis did over the window."""
    servers = CpuMeter(setup.server_pids)
    before = setup.probe.counters()
    servers.start()
    await asyncio.sleep(window_s)
    server = servers.stop()
    return server, setup.probe.counters().since(before)


async def _released(probe: RedisProbe, signals: list[str], channels: int, numpat: int) -> bool:
    def back() -> bool:
        mine = sum(probe.subscribers(signals))
        return mine == 0 and probe.channels() <= channels and probe.numpat() <= numpat

    try:
        await _wait_until(back, "release the subscriptions", RELEASE_WAIT_S)
    except BenchTimeout:
        return False
    return True


async def _wait_until(done: Callable[[], bool], what: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            raise BenchTimeout(f"the server did not {what} within {within_s:.0f} s")
        await asyncio.sleep(POLL_S)
