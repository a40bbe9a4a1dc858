"""The processes under test: one Valkey (AOF), N `jobq serve`, W fault workers, and the proxies.

Topology (everything on 127.0.0.1):

    producer -> [producer proxy] -> any server
    worker i -> [worker proxy i] -> server i % N (then the others, while it is down)
    server j -> [redis proxy j]  -> Valkey

Servers and Valkey restart behind their proxies, so a restart never changes an address a
client holds. Every blocking step (spawning a server waits for its startup line, Valkey for
its first PING) runs in a thread: the proxies share this event loop and must keep forwarding.
`close()` kills and reaps everything, even after a failure half way through `start()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from jobqueue_server.runtime.valkey import EmbeddedValkey
from tests.cluster import LocalCluster
from tests.fault.proxy import HOST, Proxy
from tests.processes import ChildProcess, ServeProcess
from tests.sentinel import LocalSentinel


@dataclass(frozen=True)
class ClusterConfig:
    servers: int = 2
    workers: int = 4
    concurrency: int = 8
    lease_s: float = 2.0
    sweep_s: float = 1.0
    max_attempts: int = 20
    key_prefix: str = "fault"
    valkey_config: dict[str, str] = field(default_factory=dict)
    #: More JOBQ_* settings for every server (retention, limits, ...).
    server_env: dict[str, str] = field(default_factory=dict)
    #: Run on a local Valkey Cluster (3 primaries, a replica each) instead of one Valkey: the
    #: servers connect to it directly (a proxy cannot stand in for nodes that redirect to
    #: each other), so the Valkey and server-Valkey faults are replaced by PRIMARY_KILL.
    redis_cluster: bool = False
    #: Run on a primary, a replica and three sentinels (tests/sentinel.py), the servers
    #: connecting through the sentinels; PRIMARY_KILL kills the primary they name.
    redis_sentinel: bool = False


@dataclass
class WorkerSlot:
    """Worker i: its proxy, its current process (None while down) and how often it started."""

    index: int
    proxy: Proxy
    process: ChildProcess | None = None
    generation: int = 0
    pid: int = 0


class Cluster:
    def __init__(self, config: ClusterConfig, work_dir: Path) -> None:
        self.config = config
        self.work_dir = work_dir
        self.valkey = EmbeddedValkey(work_dir / "valkey", extra_config=config.valkey_config)
        self.valkey_pid = 0
        self.redis_cluster: LocalCluster | LocalSentinel | None = None
        if config.redis_cluster:
            self.redis_cluster = LocalCluster(work_dir / "redis-cluster")
        elif config.redis_sentinel:
            self.redis_cluster = LocalSentinel(work_dir / "redis-sentinel")
        self.redis_proxies = [Proxy(f"redis-{j}", [(HOST, self.valkey.port)]) for j in range(config.servers)]
        self.servers: list[ServeProcess | None] = [None] * config.servers
        self.producer_proxy = Proxy("producer", [])
        self.workers = [WorkerSlot(i, Proxy(f"worker-{i}", [])) for i in range(config.workers)]
        #: Every worker pid ever started -> its index, to attribute executions to slots.
        self.worker_pids: dict[int, int] = {}
        self.paused: set[int] = set()

    @property
    def proxies(self) -> list[Proxy]:
        return [*self.redis_proxies, self.producer_proxy, *(slot.proxy for slot in self.workers)]

    @property
    def target(self) -> str:
        """Where producers and the checker connect: any live server."""
        return self.producer_proxy.address

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.start_valkey()
        for proxy in self.proxies:
            await proxy.start()
        await asyncio.gather(*(self.start_server(j) for j in range(self.config.servers)))
        for slot in self.workers:
            self.start_worker(slot.index)

    async def close(self) -> None:
        """Kills everything still running; safe to call after any partial start."""
        for pid in list(self.paused):
            self.resume(pid)  # a stopped process would not act on SIGTERM
        for slot in self.workers:
            await self.kill_worker(slot.index)
        for j in range(len(self.servers)):
            await self.kill_server(j)
        for proxy in self.proxies:
            await proxy.close()
        await asyncio.to_thread(self.valkey.stop)
        if self.redis_cluster is not None:
            await asyncio.to_thread(self.redis_cluster.stop)

    # -- Valkey ----------------------------------------------------------------------------

    async def start_valkey(self) -> None:
        if self.redis_cluster is not None:
            await asyncio.to_thread(self.redis_cluster.start)
            return
        await asyncio.to_thread(self.valkey.start)
        # EmbeddedValkey keeps its process private; Valkey reports its own pid, which is
        # what SIGSTOP needs.
        async with self.redis() as redis:
            info = await redis.info("server")
        self.valkey_pid = int(info["process_id"])

    async def kill_valkey(self) -> None:
        self.paused.discard(self.valkey_pid)
        await asyncio.to_thread(self.valkey.kill)

    def redis(self) -> Redis:
        """A direct client (no proxy) for the harness's own reads and configuration."""
        return Redis(host=HOST, port=self.valkey.port, socket_connect_timeout=2.0, socket_timeout=5.0)

    async def kill_primary(self, key: str) -> EmbeddedValkey:
        """kill -9 of the node serving `key` now (the primary, behind Sentinel): its replica
        takes over."""
        deployment = self.redis_cluster
        assert deployment is not None
        if isinstance(deployment, LocalCluster):
            node = await asyncio.to_thread(deployment.primary_for, key)
        else:
            node = await asyncio.to_thread(deployment.primary)
        await asyncio.to_thread(node.kill)
        return node

    async def restart_node(self, node: EmbeddedValkey) -> None:
        """Starts a killed node again on its port and data: it rejoins as a replica."""
        await asyncio.to_thread(node.start)

    async def cluster_healthy(self) -> bool:
        assert self.redis_cluster is not None
        return await asyncio.to_thread(self.redis_cluster.healthy)

    # -- servers ---------------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        return {
            "JOBQ_KEY_PREFIX": self.config.key_prefix,
            "JOBQ_DEFAULT_LEASE_SECONDS": str(self.config.lease_s),
            "JOBQ_SWEEP_INTERVAL_SECONDS": str(self.config.sweep_s),
            "JOBQ_DEFAULT_MAX_ATTEMPTS": str(self.config.max_attempts),
            "JOBQ_SHUTDOWN_GRACE_SECONDS": "1",
            "JOBQ_LOG_LEVEL": "WARNING",
            **self.config.server_env,
        }

    async def start_server(self, j: int) -> None:
        redis_url = f"redis://{self.redis_proxies[j].address}/0"
        if self.redis_cluster is not None:
            redis_url = self.redis_cluster.url
        server = await asyncio.to_thread(ServeProcess, ["--redis-url", redis_url], self._server_env())
        self.servers[j] = server
        self._route()

    async def kill_server(self, j: int) -> int:
        """kill -9 of server j (if running); returns its pid (0 when it was down)."""
        server, self.servers[j] = self.servers[j], None
        if server is None:
            return 0
        self._route()
        await asyncio.to_thread(server.close)  # close() is SIGKILL + reap
        return server.process.pid

    def _route(self) -> None:
        """Points the proxies at the live servers: worker i prefers server i % N."""
        live = [(j, (HOST, s.port)) for j, s in enumerate(self.servers) if s is not None]
        self.producer_proxy.upstreams = [address for _, address in live]
        for slot in self.workers:
            home = slot.index % len(self.servers)
            ordered = sorted(live, key=lambda item: (item[0] - home) % len(self.servers))
            slot.proxy.upstreams = [address for _, address in ordered]

    # -- workers ---------------------------------------------------------------------------

    def worker_log(self, index: int, generation: int) -> Path:
        return self.work_dir / f"worker-{index}-{generation}.log"

    def start_worker(self, index: int) -> None:
        slot = self.workers[index]
        slot.generation += 1
        args = [
            "--target", slot.proxy.address,
            "--log", str(self.worker_log(index, slot.generation)),
            "--index", str(index),
            "--concurrency", str(self.config.concurrency),
        ]  # fmt: skip
        slot.process = ChildProcess(args, module="tests.fault.fault_worker")
        slot.pid = slot.process.process.pid
        self.worker_pids[slot.pid] = index

    async def kill_worker(self, index: int) -> int:
        """kill -9 of worker `index` (if running); returns its pid (0 when it was down)."""
        slot = self.workers[index]
        process, slot.process = slot.process, None
        if process is None:
            return 0
        self.paused.discard(process.process.pid)
        await asyncio.to_thread(process.close)
        return process.process.pid

    def worker_exited(self, index: int) -> bool:
        process = self.workers[index].process
        return process is not None and process.process.poll() is not None

    async def supervise(self, interval_s: float = 0.2) -> None:
        """Replaces workers that died on their own (a poison job's SIGKILL), until cancelled,
        as a process manager would."""
        while True:
            for slot in self.workers:
                if self.worker_exited(slot.index):
                    await self.kill_worker(slot.index)  # reaps it and closes its pipe
                    self.start_worker(slot.index)
            await asyncio.sleep(interval_s)

    # -- pauses ----------------------------------------------------------------------------

    def pause(self, pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(pid)

    def resume(self, pid: int) -> None:
        self.paused.discard(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@contextlib.asynccontextmanager
async def running_cluster(config: ClusterConfig, work_dir: Path) -> AsyncIterator[Cluster]:
    """A started Cluster, closed on the way out whatever happened."""
    cluster = Cluster(config, work_dir)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.close()
