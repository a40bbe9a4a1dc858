"""The system under test: a Redis (an embedded Valkey, or the user's) and `jobq serve` processes."""

from __future__ import annotations

import contextlib
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue_bench.processes import Child, child_env, python_module_argv, stop_all
from jobqueue_bench.redis_cost import RedisProbe
from jobqueue_server.runtime.valkey import EmbeddedValkey

SERVER_START_S = 60.0  # two busy cores and a cold import of grpc
SERVER_GRACE_S = 2.0
LISTENING = re.compile(r"^jobqueue listening on \S+:(?P<port>\d+) ")
HOST = "127.0.0.1"
DEFAULT_MAX_IN_FLIGHT = 1000  # the server's default; larger windows need it raised


def _port(line: str) -> int | None:
    match = LISTENING.match(line)
    return int(match["port"]) if match else None


@dataclass
class Server:
    child: Child
    port: int

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class Deployment:
    """Redis plus `servers` servers, each `processes` server processes on one port behind a
    supervisor (`jobq serve --processes N`); `close` stops what was started and removes our keys.

    On a Redis we started (no --redis-url) the data is ours to flush; on the user's Redis the
    servers write under a key prefix of their own, deleted at the end.
    """

    redis_url: str
    owns_redis: bool
    key_prefix: str
    servers: list[Server] = field(default_factory=list)
    valkey: EmbeddedValkey | None = None
    probe: RedisProbe | None = None
    _folder: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def start(cls, redis_url: str | None, servers: int, max_in_flight: int, processes: int = 1) -> Deployment:
        deployment = cls(redis_url or "", redis_url is None, f"jqbench{uuid.uuid4().hex[:6]}")
        try:
            deployment._start(servers, max_in_flight, processes)
        except BaseException:
            deployment.close()
            raise
        return deployment

    def _start(self, servers: int, max_in_flight: int, processes: int) -> None:
        if self.owns_redis:
            self._folder = tempfile.TemporaryDirectory(prefix="jobq-bench-")
            # The settings of `jobq serve`'s embedded Valkey: AOF on, fsync every second.
            self.valkey = EmbeddedValkey(Path(self._folder.name) / "valkey")
            self.redis_url = self.valkey.start()
        self.probe = RedisProbe(self.redis_url)
        self.probe.ping()
        env = child_env({
            "JOBQ_KEY_PREFIX": self.key_prefix,
            "JOBQ_MAX_IN_FLIGHT": str(max(DEFAULT_MAX_IN_FLIGHT, max_in_flight)),
            "JOBQ_SHUTDOWN_GRACE_SECONDS": str(SERVER_GRACE_S),
        })  # fmt: skip
        argv = python_module_argv(
            "jobqueue_cli", "serve", "--host", HOST, "--port", "0",
            "--redis-url", self.redis_url, "--log-level", "WARNING", "--processes", str(processes),
        )  # fmt: skip
        children = [Child(f"jobq serve #{index + 1}", argv, env) for index in range(servers)]
        self.servers = [Server(child, 0) for child in children]  # known, so close() stops them
        for server in self.servers:
            server.port = server.child.wait_for_line(_port, SERVER_START_S)

    @property
    def targets(self) -> list[str]:
        return [server.target for server in self.servers]

    def reset(self) -> None:
        """Clears the data between measurements of a suite (only our own Redis)."""
        if self.owns_redis and self.probe is not None:
            self.probe.flushall()

    def close(self) -> None:
        stop_all([server.child for server in self.servers], SERVER_GRACE_S + 8.0)
        self.servers = []
        if self.probe is not None:
            if not self.owns_redis:
                with contextlib.suppress(Exception):  # cleanup is a courtesy: never hide the result
                    self.probe.delete_prefix(self.key_prefix)
            self.probe.close()
            self.probe = None
        if self.valkey is not None:
            self.valkey.stop()
            self.valkey = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
