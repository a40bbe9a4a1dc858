"""A conformance worker running as a subprocess, with the lines it has printed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from tests.processes import WAIT_S, Child


class WorkerProcess(Child):
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
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        env = {
            **(extra_env or {}),
            "JOBQ_TARGET": target,
            "JOBQ_QUEUES": queue,
            "JOBQ_CONCURRENCY": str(concurrency),
            "JOBQ_WORKER_ID": worker_id,
            "JOBQ_GRACE_SECONDS": str(grace_s),
        }
        super().__init__(command, env, cwd=cwd)

    async def line(self, text: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        """`wait_line` without blocking the event loop (the server under test runs on it)."""
        await asyncio.to_thread(self.wait_line, text, count, timeout_s)

    async def exit_code(self, timeout_s: float = WAIT_S) -> int:
        return await self.wait_async(timeout_s)

    def wait_line(self, text: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        """Waits until `count` lines equal `text` (or start with it, for `START` and `END`)."""
        self.wait_for_count(lambda line: line == text or line.startswith(text + " "), count, timeout_s)

    def events(self) -> list[tuple[str, str]]:
        """(START|END, job id) in the order printed."""
        with self._changed:
            return [tuple(line.split(" ", 1)) for line in self.lines if line.startswith(("START ", "END "))]

    def signal(self, signum: int) -> None:
        self.send_signal(signum)

    def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        return self.wait(timeout_s)

    def stop(self) -> None:
        """Ends the process however it is (tests' cleanup)."""
        self.close()
