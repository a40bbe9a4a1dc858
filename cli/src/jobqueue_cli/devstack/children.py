"""Child processes of the stack: started in their own session, output forwarded, stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence

from jobqueue_cli.devstack.output import Output

# A child's log line may carry a whole payload; asyncio's default line limit is 64 KiB.
LINE_LIMIT_BYTES = 4 * 1024 * 1024


class Child:
    """One child process whose stdout and stderr are forwarded, line by line, to the Output."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, output: Output) -> None:
        self.name = name
        self.process = process
        self.output = output
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        output: Output,
        on_line: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Child:
        """Starts argv in a new session: the terminal's Ctrl-C then reaches only `jobq dev`,
        which stops the children itself, in order (a shared signal would stop them all at once)."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # PYTHONUNBUFFERED: lines as they are written, not per 8 KiB. Secrets go by `env`, not argv.
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            limit=LINE_LIMIT_BYTES,
        )
        child = cls(name, process, output)
        child._pump = asyncio.create_task(child._forward(on_line), name=f"{name}-output")
        return child

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _forward(self, on_line: Callable[[str], None] | None) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():  # b"" at EOF: the child has exited
            text = line.decode(errors="replace").rstrip()
            self.output.line(self.name, text)
            if on_line is not None:
                on_line(text)

    async def wait(self) -> int:
        """Waits for the child to exit and for its last output line (cancelling this leaves both be)."""
        if self._pump is not None:
            await asyncio.shield(self._pump)
        return await self.process.wait()

    async def stop(self, timeout_s: float, hurry: asyncio.Event) -> int:
        """SIGTERM, then SIGKILL after `timeout_s` or as soon as `hurry` is set (a second Ctrl-C)."""
        if self.process.returncode is None:
            self.output.note(f"stopping {self.name} (pid {self.pid})")
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            if not await _first(self.process.wait(), hurry.wait(), timeout_s):
                why = "stopping at once" if hurry.is_set() else f"still running after {timeout_s:g} s"
                self.output.error(f"{self.name}: {why}: killing it")
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        return await self.wait()


async def _first(main: Awaitable[object], hurry: Awaitable[object], timeout_s: float) -> bool:
    """True when `main` finished before `hurry` and the timeout; whatever is left is cancelled."""
    task = asyncio.ensure_future(main)
    cut = asyncio.ensure_future(hurry)
    done, _ = await asyncio.wait({task, cut}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, cut):
        pending.cancel()
    await asyncio.gather(task, cut, return_exceptions=True)
    return task in done
