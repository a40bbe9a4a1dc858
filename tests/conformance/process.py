"""A conformance worker running as a subprocess, with the lines it has printed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

WAIT_S = 30.0


class WorkerProcess:
    """Starts a worker command with the kit's environment and follows its stdout."""

    def __init__(
        self,
        command: list[str],
        *,
        target: str,
        queue: str,
        concurrency: int,
        worker_id: str,
        grace_s: float = 10.0,
        cwd: Path | None = None,
    ) -> None:
        env = {
            **os.environ,
            "JOBQ_TARGET": target,
            "JOBQ_QUEUES": queue,
            "JOBQ_CONCURRENCY": str(concurrency),
            "JOBQ_WORKER_ID": worker_id,
            "JOBQ_GRACE_SECONDS": str(grace_s),
        }
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    async def line(self, text: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        """`wait_line` without blocking the event loop (the server under test runs on it)."""
        await asyncio.to_thread(self.wait_line, text, count, timeout_s)

    async def exit_code(self, timeout_s: float = WAIT_S) -> int:
        return await asyncio.to_thread(self.wait_exit, timeout_s)

    def wait_line(self, text: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        """Waits until `count` lines equal `text` (or start with it, for `START` and `END`)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while sum(1 for line in self.lines if line == text or line.startswith(text + " ")) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {count}x {text!r} within {timeout_s}s; output:\n" + self.output)
                self._changed.wait(remaining)

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def events(self) -> list[tuple[str, str]]:
        """(START|END, job id) in the order printed."""
        with self._changed:
            return [tuple(line.split(" ", 1)) for line in self.lines if line.startswith(("START ", "END "))]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(timeout_s)
        return code

    def stop(self) -> None:
        """Ends the process however it is (tests' cleanup)."""
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait()
        self._reader.join(WAIT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
