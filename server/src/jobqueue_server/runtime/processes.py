"""`jobq serve --processes N`: N server processes on one port, sharing one Redis.

One Python process serves gRPC on one core. The servers hold no state of their own, so N of them
on one Redis is the same design as N servers on N machines; here they share one port with
SO_REUSEPORT, and the kernel spreads connections over them. This process starts the embedded
Valkey once (when no Redis URL is given), starts the servers (`python -m jobqueue_server`, each
configured like this one), starts again any that dies, and on SIGTERM stops them all gracefully
before the Valkey. Every server runs its own maintenance loop: the scripts make concurrent
passes safe, and a pass over idle queues costs a few reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping

from jobqueue_server.config import ServerSettings

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
# A server that keeps dying is started again at most this often.
RESTART_DELAY_S = 1.0
# What a server may take to drain, beyond its own grace period, before it is killed.
STOP_MARGIN_S = 5.0


def free_port(host: str) -> int:
    """A port free on `host` now, for the servers to share (bound here with SO_REUSEPORT too)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def child_environment(settings: ServerSettings, redis_url: str, port: int) -> dict[str, str]:
    """The environment of one server process: this one's settings, one process, a shared port."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBQ_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"JOBQ_{name.upper()}"] = str(value)
    env |= {
        "JOBQ_REDIS_URL": redis_url,
        "JOBQ_PORT": str(port),
        "JOBQ_PROCESSES": "1",
        "JOBQ_REUSE_PORT": "true",
    }
    return env


class Server:
    """One server process, and what it printed when it started listening."""

    def __init__(self, index: int, env: Mapping[str, str]) -> None:
        self.index = index
        self._env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobqueue_server", env=self._env, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"server process {self.index} exited before it listened")
                if line.startswith(b"jobqueue listening on "):
                    break
        self._output = asyncio.create_task(self._forward(self.process.stdout))

    @staticmethod
    async def _forward(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            sys.stdout.buffer.write(line)
            sys.stdout.flush()

    async def stop(self, grace_s: float) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace_s + STOP_MARGIN_S)
        except TimeoutError:
            logger.warning("server process %d did not stop in time; killing it", self.index)
            self.process.kill()
            await self.process.wait()
        if self._output is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._output


async def supervise(settings: ServerSettings, redis_url: str, count: int, stop: asyncio.Event) -> int:
    """Runs `count` servers on one port until `stop`; returns the port."""
    port = settings.port or free_port(settings.host)
    env = child_environment(settings, redis_url, port)
    servers = [Server(index, _own_metrics_port(env, index)) for index in range(count)]
    # Each server reads its TLS files again on SIGHUP; the operator signals this process.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _forward_signal, servers, signal.SIGHUP)
    try:
        await asyncio.gather(*(server.start() for server in servers))
        print(f"jobqueue listening on {settings.host}:{port} ({count} processes)", flush=True)
        await _keep_running(servers, stop)
    finally:
        await asyncio.gather(*(server.stop(settings.shutdown_grace_seconds) for server in servers))
    return port


def _own_metrics_port(env: dict[str, str], index: int) -> dict[str, str]:
    """Each process serves its own metrics (its counters are its own): process i on the
    metrics port + i, so Prometheus scrapes each (docs/monitoring.md)."""
    if "JOBQ_METRICS_PORT" not in env or env["JOBQ_METRICS_PORT"] == "0":
        return env
    return env | {"JOBQ_METRICS_PORT": str(int(env["JOBQ_METRICS_PORT"]) + index)}


def _forward_signal(servers: list[Server], signum: signal.Signals) -> None:
    for server in servers:
        if server.process is not None and server.process.returncode is None:
            server.process.send_signal(signum)


async def _keep_running(servers: list[Server], stop: asyncio.Event) -> None:
    """Starts again any server that exits before `stop` is set."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            exits = {asyncio.ensure_future(s.process.wait()): s for s in servers if s.process is not None}
            done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in exits:
                waiter.cancel()
            for waiter in done - {stopping}:
                server = exits[waiter]
                logger.error(
                    "server process %d exited with %s; starting it again", server.index, waiter.result()
                )
                await asyncio.sleep(RESTART_DELAY_S)
                if not stop.is_set():
                    await server.start()
    finally:
        stopping.cancel()
