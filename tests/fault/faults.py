"""Faults: a plan drawn from a seeded RNG, and the injector that applies it to a Cluster.

The plan (times, kinds, targets, durations) is a pure function of the seed and the profile,
so a failing run is replayed with the same seed. Faults run one after another: a fault
planned while the previous one is still in effect waits for it to heal. That keeps each
fault's effect readable in the report, and avoids states the plan did not mean (a server
restarting while Valkey is down refuses to start, which would only test the harness).

Each applied fault becomes a FaultEvent with wall-clock start and heal times and its
*scope*: the pid of the one worker it hit, or None when every job could feel it (servers,
Valkey, server-to-Valkey links). The checker uses scopes to explain duplicate executions.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tests.fault.cluster import Cluster
from tests.fault.fault_worker import QUEUE

logger = logging.getLogger(__name__)

HEAL_TIMEOUT_S = 30.0


class Fault(enum.StrEnum):
    WORKER_KILL = "worker_kill"  # kill -9, replacement started after `duration`
    SERVER_KILL = "server_kill"  # kill -9, restarted after `duration`
    VALKEY_KILL = "valkey_kill"  # kill -9, restarted on the same port and data (AOF) after `duration`
    WORKER_PAUSE = "worker_pause"  # SIGSTOP for longer than a lease, then SIGCONT
    VALKEY_PAUSE = "valkey_pause"  # SIGSTOP / SIGCONT
    WORKER_CUT = "worker_cut"  # reset every connection worker <-> server
    WORKER_STALL = "worker_stall"  # stop forwarding worker <-> server for `duration`
    REDIS_CUT = "redis_cut"  # reset every connection server <-> Valkey
    REDIS_STALL = "redis_stall"  # stop forwarding server <-> Valkey for `duration`
    # On a Redis Cluster: kill -9 of the primary serving the fault queue; its replica is
    # promoted; the node restarts after `duration` and rejoins as a replica.
    PRIMARY_KILL = "primary_kill"


@dataclass(frozen=True)
class PlannedFault:
    at_s: float  # seconds after the run started
    kind: Fault
    target: int  # worker or server index (0 for Valkey)
    duration_s: float


@dataclass
class FaultEvent:
    kind: Fault
    target: int
    planned_at_s: float
    started: float  # unix time
    healed: float  # unix time: restarted, resumed or flowing again
    scope_pid: int | None  # the worker process hit, or None for a fault every job may feel
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def durations(kind: Fault, rng: random.Random, lease_s: float, sweep_s: float) -> float:
    """How long a fault lasts (or, for kills, how long the process stays down)."""
    if kind is Fault.WORKER_PAUSE:
        # Longer than the lease plus two sweeps: the lease has surely been reaped when the
        # worker wakes, so whatever it acks then must be refused.
        return lease_s + 2 * sweep_s + rng.uniform(0.5, 2.0)
    if kind in (Fault.VALKEY_PAUSE, Fault.WORKER_STALL, Fault.REDIS_STALL):
        return rng.uniform(0.5, lease_s + 2.0)
    if kind is Fault.PRIMARY_KILL:
        return rng.uniform(2.0, 4.0)  # down past the failover (about 1 to 2 s here)
    if kind in (Fault.WORKER_CUT, Fault.REDIS_CUT):
        return 0.0
    return rng.uniform(0.2, 1.5)


def plan(
    counts: Mapping[Fault, int],
    window_s: tuple[float, float],
    rng: random.Random,
    *,
    servers: int,
    workers: int,
    lease_s: float,
    sweep_s: float,
) -> list[PlannedFault]:
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(kinds)
    times = sorted(rng.uniform(*window_s) for _ in kinds)
    planned = []
    for at_s, kind in zip(times, kinds, strict=True):
        many = servers if kind in (Fault.SERVER_KILL, Fault.REDIS_CUT, Fault.REDIS_STALL) else workers
        target = (
            0 if kind in (Fault.VALKEY_KILL, Fault.VALKEY_PAUSE, Fault.PRIMARY_KILL) else rng.randrange(many)
        )
        planned.append(
            PlannedFault(round(at_s, 3), kind, target, round(durations(kind, rng, lease_s, sweep_s), 3))
        )
    return planned


class Injector:
    """Applies a plan to a cluster, one fault at a time, and records what happened."""

    def __init__(self, cluster: Cluster, planned: list[PlannedFault]) -> None:
        self.cluster = cluster
        self.planned = planned
        self.events: list[FaultEvent] = []

    async def run(self) -> list[FaultEvent]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for fault in self.planned:
            await asyncio.sleep(max(0.0, start + fault.at_s - loop.time()))
            logger.info("fault %s on %d for %.2f s", fault.kind, fault.target, fault.duration_s)
            self.events.append(await self.apply(fault))
        return self.events

    async def apply(self, fault: PlannedFault) -> FaultEvent:
        started = time.time()
        scope, detail = await _APPLY[fault.kind](self.cluster, fault)
        return FaultEvent(fault.kind, fault.target, fault.at_s, started, time.time(), scope, detail)


async def _worker_kill(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    pid = await cluster.kill_worker(fault.target)
    await asyncio.sleep(fault.duration_s)
    cluster.start_worker(fault.target)
    return pid, f"pid {pid} -> {cluster.workers[fault.target].pid}"


async def _server_kill(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    pid = await cluster.kill_server(fault.target)
    await asyncio.sleep(fault.duration_s)
    await cluster.start_server(fault.target)
    return None, f"pid {pid}"


async def _valkey_kill(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    pid = cluster.valkey_pid
    await cluster.kill_valkey()
    await asyncio.sleep(fault.duration_s)
    await cluster.start_valkey()
    return None, f"pid {pid} -> {cluster.valkey_pid}"


async def _primary_kill(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    node = await cluster.kill_primary(f"{{{QUEUE}}}")
    await asyncio.sleep(fault.duration_s)
    await cluster.restart_node(node)
    # Healed once the cluster is whole again (the old primary back, as a replica).
    deadline = time.monotonic() + HEAL_TIMEOUT_S
    while not await cluster.cluster_healthy() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return None, f"port {node.port}"


async def _worker_pause(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    pid = cluster.workers[fault.target].pid
    cluster.pause(pid)
    await asyncio.sleep(fault.duration_s)
    cluster.resume(pid)
    return pid, f"pid {pid}"


async def _valkey_pause(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    cluster.pause(cluster.valkey_pid)
    await asyncio.sleep(fault.duration_s)
    cluster.resume(cluster.valkey_pid)
    return None, f"pid {cluster.valkey_pid}"


async def _worker_cut(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    cut = cluster.workers[fault.target].proxy.cut()
    return cluster.workers[fault.target].pid, f"{cut} connections"


async def _worker_stall(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    await cluster.workers[fault.target].proxy.stall(fault.duration_s)
    return cluster.workers[fault.target].pid, ""


async def _redis_cut(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    return None, f"{cluster.redis_proxies[fault.target].cut()} connections"


async def _redis_stall(cluster: Cluster, fault: PlannedFault) -> tuple[int | None, str]:
    await cluster.redis_proxies[fault.target].stall(fault.duration_s)
    return None, ""


_APPLY = {
    Fault.PRIMARY_KILL: _primary_kill,
    Fault.WORKER_KILL: _worker_kill,
    Fault.SERVER_KILL: _server_kill,
    Fault.VALKEY_KILL: _valkey_kill,
    Fault.WORKER_PAUSE: _worker_pause,
    Fault.VALKEY_PAUSE: _valkey_pause,
    Fault.WORKER_CUT: _worker_cut,
    Fault.WORKER_STALL: _worker_stall,
    Fault.REDIS_CUT: _redis_cut,
    Fault.REDIS_STALL: _redis_stall,
}
