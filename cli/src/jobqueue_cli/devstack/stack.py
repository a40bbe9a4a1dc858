"""The dev stack: SMTP sink, Valkey, server, worker started in that order and stopped in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from jobqueue import AsyncClient, Tls
from jobqueue_cli.devstack import DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, DEFAULT_PORT, DEFAULT_SMTP_PORT
from jobqueue_cli.devstack.certs import DevCertificates, dev_certificates
from jobqueue_cli.devstack.children import Child
from jobqueue_cli.devstack.mailsink import MailSink
from jobqueue_cli.devstack.output import Output
from jobqueue_cli.devstack.sample import EMAIL_PAYLOAD, enqueue_command, image_payload, write_sample_image
from jobqueue_server.runtime.valkey import EmbeddedValkey, stored_password

HOST = "127.0.0.1"  # a development stack listens on loopback only
SERVER_READY_PREFIX = "jobqueue listening on"
READY_LINE = "jobq dev ready"
STARTUP_TIMEOUT_S = 30.0
# The worker may finish running jobs for WORKER_GRACE_S; each child then has STOP_MARGIN_S more.
WORKER_GRACE_S = 10.0
SERVER_GRACE_S = 10.0  # jobq serve's default shutdown_grace_seconds
STOP_MARGIN_S = 5.0
DEV_SENDER = "jobq-dev@localhost"


class StartupFailed(Exception):
    """A part of the stack did not come up; the message says which and why."""


@dataclass(frozen=True)
class DevConfig:
    port: int = DEFAULT_PORT
    smtp_port: int = DEFAULT_SMTP_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    http_port: int = DEFAULT_HTTP_PORT
    data_dir: Path = Path(".jobq-data")
    #: TLS with a local CA and API tokens (--secure).
    secure: bool = False

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class Running:
    """The parts that are up, for the banner and for the watch on unexpected exits."""

    valkey: EmbeddedValkey
    server: Child
    worker: Child
    sample: Path
    certificates: DevCertificates | None


class DevStack:
    def __init__(self, config: DevConfig, output: Output) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.output = output
        self.stop_requested = asyncio.Event()
        self.hurry = asyncio.Event()  # a second Ctrl-C: kill what is still stopping

    def request_stop(self) -> None:
        if self.stop_requested.is_set():
            self.output.error("second signal: stopping at once")
            self.hurry.set()
        else:
            self.output.note("signal received: stopping every part (a second signal stops at once)")
            self.stop_requested.set()

    async def run(self) -> int:
        """Runs until SIGINT or SIGTERM (exit status 0) or until a part fails (1)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop)
        async with contextlib.AsyncExitStack() as stack:  # stops what started, in reverse order
            status = await self._run_in(stack)
        self.output.note("stopped")
        return status

    async def _run_in(self, stack: contextlib.AsyncExitStack) -> int:
        try:
            running = await self._start(stack)
        except StartupFailed as error:
            self.output.error(f"could not start: {error}")
            return 1
        if running is None:
            return 0
        self._banner(running)
        return await self._watch(running)

    async def _start(self, stack: contextlib.AsyncExitStack) -> Running | None:
        """Starts every part, registering its stop on `stack`; None if stopped while starting."""
        _check_free(self.config.port)
        sink = MailSink(self.data_dir / "mail", HOST, self.config.smtp_port, self.output)
        await _or_fail(asyncio.to_thread(sink.start), f"smtp sink on {HOST}:{self.config.smtp_port}")
        stack.callback(self._stopping, "smtp sink", sink.stop)
        valkey_dir = self.data_dir / "valkey"
        valkey = EmbeddedValkey(valkey_dir, password=stored_password(valkey_dir), dies_with_parent=True)
        valkey.launch()  # from the loop's thread, which lives as long as the stack
        await _or_fail(asyncio.to_thread(valkey.wait_ready), "valkey")
        stack.push_async_callback(
            asyncio.to_thread, self._stopping, f"valkey (pid {valkey.pid})", valkey.stop
        )
        self.output.line("valkey", f"{_valkey_address(valkey)}, data and log in {valkey.data_dir}")
        if self.stop_requested.is_set():
            return None
        certificates = dev_certificates(self.data_dir / "tls", HOST) if self.config.secure else None
        server = await self._start_server(stack, valkey.local_url, certificates)
        if server is None:
            return None
        sample = write_sample_image(self.data_dir / "inbox" / "sample.png")
        worker_env = await self._worker_credentials(certificates) if certificates else {}
        worker = await Child.start("worker", self._worker_argv(), self.output, env=worker_env)
        stack.push_async_callback(worker.stop, WORKER_GRACE_S + STOP_MARGIN_S, self.hurry)
        return Running(valkey, server, worker, sample, certificates)

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin.token"

    async def _worker_credentials(self, certificates: DevCertificates) -> dict[str, str]:
        """A worker token for the two queues, made with the bootstrap admin token."""
        admin = self.admin_token_file.read_text().strip()
        tls = Tls(ca_file=certificates.ca)
        async with AsyncClient(self.config.target, token=admin, tls=tls, batching=None) as client:
            made = await client.create_token("jobq dev worker", "worker", ["emails", "images"])
        return {"JOBQ_TOKEN": made.token, "JOBQ_TLS_CA": str(certificates.ca)}

    def _stopping(self, what: str, stop: Callable[[], None]) -> None:
        self.output.note(f"stopping {what}")
        stop()

    async def _start_server(
        self, stack: contextlib.AsyncExitStack, redis_url: str, certificates: DevCertificates | None
    ) -> Child | None:
        listening = asyncio.get_running_loop().create_future()

        def on_line(line: str) -> None:
            if line.startswith(SERVER_READY_PREFIX) and not listening.done():
                listening.set_result(None)

        argv = [*_jobq("serve"), "--host", HOST, "--port", str(self.config.port)]
        argv += ["--metrics-port", str(self.config.metrics_port), "--http-port", str(self.config.http_port)]
        if certificates is not None:
            argv += ["--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key), "--auth"]
            argv += ["--admin-token-file", str(self.admin_token_file)]
        # The URL carries the Valkey password: by environment, not argv, which `ps` shows.
        server = await Child.start("server", argv, self.output, on_line, env={"JOBQ_REDIS_URL": redis_url})
        stack.push_async_callback(server.stop, SERVER_GRACE_S + STOP_MARGIN_S, self.hurry)
        outcome = await _race(
            {"ready": listening, "exited": server.wait(), "stop": self.stop_requested.wait()},
            STARTUP_TIMEOUT_S,
        )
        if outcome == "exited":
            raise StartupFailed(f"the server exited with status {server.process.returncode} (see its output)")
        if outcome is None:
            raise StartupFailed(f"the server did not listen within {STARTUP_TIMEOUT_S:.0f} s")
        return server if outcome == "ready" else None

    def _worker_argv(self) -> list[str]:
        return [
            *_jobq("worker"), "--target", self.config.target, "--queues", "emails,images",
            "--grace-seconds", str(WORKER_GRACE_S),
            "--smtp-host", HOST, "--smtp-port", str(self.config.smtp_port), "--smtp-security", "none",
            "--smtp-from", DEV_SENDER,
            "--image-output-dir", str(self.data_dir / "images"),
            "--image-input-dir", str(self.data_dir / "inbox"),
            "--allow-private-networks",
        ]  # fmt: skip

    async def _watch(self, running: Running) -> int:
        """Waits for a stop signal; a child that exits on its own stops the stack with status 1."""
        outcome = await _race(
            {
                "stop": self.stop_requested.wait(),
                "server": running.server.wait(),
                "worker": running.worker.wait(),
            },
            None,
        )
        if outcome == "stop":
            return 0
        self.output.error(f"the {outcome} exited on its own: stopping the stack")
        return 1

    def _banner(self, running: Running) -> None:
        target = None if self.config.port == DEFAULT_PORT else self.config.target
        secured = running.certificates
        extras = ", TLS and tokens" if secured else ""
        lines = [
            "jobq dev is up; Ctrl-C stops everything.",
            f"  server  {self.config.target} (gRPC, health and reflection{extras})",
            f"  valkey  {_valkey_address(running.valkey)}, data in {running.valkey.data_dir}",
            f"  worker  queues emails and images; image outputs in {self.data_dir / 'images'}",
            f"  smtp    {HOST}:{self.config.smtp_port}; every message is kept in {self.data_dir / 'mail'}",
            f"  ui      http://{HOST}:{self.config.http_port}/ui/ (the dashboard; docs/dashboard.md)",
            f"  http    http://{HOST}:{self.config.http_port}/v1/ (HTTP/JSON; docs/http.md)",
            f"  metrics http://{HOST}:{self.config.metrics_port}/metrics (Prometheus; docs/monitoring.md)",
            *(
                [
                    "Every call needs TLS and a token; in this shell (admin token, every queue):",
                    f"  export JOBQ_TLS_CA={secured.ca} JOBQ_TOKEN=$(cat {self.admin_token_file})",
                ]
                if secured
                else []
            ),
            "Try the tutorial's jobs:",
            f"  {enqueue_command('emails', EMAIL_PAYLOAD, target)}",
            f"  {enqueue_command('images', image_payload(running.sample), target)}",
            f"  jobq stats{' --target ' + target if target else ''} --watch",
        ]
        for line in lines:
            self.output.note(line)
        pids = f"valkey={running.valkey.pid} server={running.server.pid} worker={running.worker.pid}"
        self.output.note(f"{READY_LINE}: pids {pids}")


def _valkey_address(valkey: EmbeddedValkey) -> str:
    """Where Valkey listens, without its password (kept in its data dir)."""
    return f"127.0.0.1:{valkey.port} (password in {valkey.data_dir / 'password'})"


def _check_free(port: int) -> None:
    """Fails when the port is taken. gRPC binds with SO_REUSEPORT, so a second server on a busy
    port would start without error and share its connections with the first one."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise StartupFailed(
                f"{HOST}:{port} is in use (another jobq dev or jobq serve?): {error}"
            ) from error


def _jobq(command: str) -> list[str]:
    """This interpreter's `jobq COMMAND`: right even when `jobq` is not on PATH."""
    return [sys.executable, "-m", "jobqueue_cli", command]


async def _or_fail(step: Awaitable[object], what: str) -> None:
    try:
        await step
    except (OSError, RuntimeError, TimeoutError) as error:
        raise StartupFailed(f"{what}: {error}") from error


async def _race(contenders: dict[str, Awaitable[object]], timeout_s: float | None) -> str | None:
    """The name of the first awaitable to finish (None on timeout); the others are cancelled."""
    tasks = {asyncio.ensure_future(awaitable): name for name, awaitable in contenders.items()}
    done, pending = await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return tasks[next(iter(done))] if done else None
