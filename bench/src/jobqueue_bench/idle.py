"""What idle workers cost: S Lease streams, each subscribed to 64 empty queues, over a window.

The streams are raw: the generated stub, a Subscribe, then nothing (no client library, so no
keep-alive or poll of ours is counted). Each stream has queues of its own (S x 64 queues in
all: the most subscriptions and waiters the server can be asked to hold for S streams). Once
the server has subscribed to every queue's signal channel (PUBSUB NUMSUB on the Redis), the
CPU of the server processes and of Redis and the Redis commands are read over the window.
Then the streams are closed, and the server must let go of the channels: it does so about
10 s after a queue's last watcher left, so PUBSUB CHANNELS and NUMPAT are polled until they
are back to what they were before the streams opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_bench.fleet import BenchTimeout
from jobqueue_bench.measure import CpuMeter
from jobqueue_bench.redis_cost import RedisProbe
from jobqueue_server.store.keys import QueueKeys

QUEUES_PER_STREAM = 64  # the most one Subscribe may name
SUBSCRIBE_WAIT_S = 30.0
RELEASE_WAIT_S = 40.0  # the server lets go about 10 s after the last watcher; a margin for busy cores
POLL_S = 0.1
# Separate connections (grpc shares one between equal channels otherwise), so the kernel
# spreads the streams over the processes of a `--processes N` server.
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
Call: TypeAlias = "grpc.aio.StreamStreamCall[svc.LeaseRequest, svc.LeaseResponse]"


@dataclass(frozen=True)
class IdleCost:
    """The idle phase's figures; CPU in percent of one core over the window."""

    streams: int
    queues_per_stream: int
    queues: int
    window_seconds: float
    server_processes: int
    server_cpu_percent: float | None
    redis_cpu_percent: float
    total_cpu_percent: float | None
    redis_commands_per_second: float
    subscribe_seconds: float
    channels_before: int
    channels_after: int
    numpat_before: int
    numpat_after: int
    released: bool
    release_seconds: float | None

    def document(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def note(self) -> str:
        cpu = _percent(self.total_cpu_percent)
        released = f"released after {self.release_seconds:.1f} s" if self.released else "NOT released"
        return (
            f"idle: {self.streams} Lease streams x {self.queues_per_stream} queues cost {cpu} of a core "
            f"(server {_percent(self.server_cpu_percent)}, Valkey {self.redis_cpu_percent:.2f}%, "
            f"{self.redis_commands_per_second:.1f} Redis cmds/s) over {self.window_seconds:g} s; "
            f"subscriptions {released}"
        )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


@dataclass
class IdleSetup:
    targets: Sequence[str]  # the servers' addresses, streams spread over them in turn
    connections: int  # per target
    server_pids: Sequence[int]
    probe: RedisProbe
    key_prefix: str


def queue_names(streams: int, tag: str) -> list[list[str]]:
    return [[f"idle.{tag}.{s}.{q}" for q in range(QUEUES_PER_STREAM)] for s in range(streams)]


async def measure_idle(setup: IdleSetup, streams: int, window_s: float, tag: str) -> IdleCost:
    queues = queue_names(streams, tag)
    signals = [QueueKeys.of(setup.key_prefix, q).signal for names in queues for q in names]
    channels_before, numpat_before = setup.probe.channels(), setup.probe.numpat()
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
        server, redis_cpu, commands = await _window(setup, window_s)
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*(channel.close() for channel in channels))
    closed = time.monotonic()
    released = await _released(setup.probe, signals, channels_before, numpat_before)
    total = None if server is None else server + redis_cpu
    return IdleCost(
        streams=streams, queues_per_stream=QUEUES_PER_STREAM, queues=len(signals),
        window_seconds=window_s, server_processes=len(setup.server_pids),
        server_cpu_percent=None if server is None else 100 * server / window_s,
        redis_cpu_percent=100 * redis_cpu / window_s,
        total_cpu_percent=None if total is None else 100 * total / window_s,
        redis_commands_per_second=commands / window_s, subscribe_seconds=subscribed_s,
        channels_before=channels_before, channels_after=setup.probe.channels(),
        numpat_before=numpat_before, numpat_after=setup.probe.numpat(),
        released=released, release_seconds=time.monotonic() - closed if released else None,
    )  # fmt: skip


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


async def _window(setup: IdleSetup, window_s: float) -> tuple[float | None, float, int]:
    """Server CPU seconds (None off Linux), Redis CPU seconds and Redis commands over the window."""
    servers = CpuMeter(setup.server_pids)
    before = setup.probe.counters()
    servers.start()
    await asyncio.sleep(window_s)
    server = servers.stop()
    usage = setup.probe.counters().since(before)
    return server, usage.cpu_seconds, usage.commands


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
