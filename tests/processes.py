"""Child processes for the tests: started, followed through their output, cleaned up.

The one helper every suite uses for real processes (`jobq serve`, workers in every language,
the fault suite's workers, conformance programs). A thread drains each child's output as it
comes: a child writing logs into a pipe nobody reads blocks once the pipe is full, which would
look like a hang in the code under test.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

WAIT_S = 30.0
_LISTENING = re.compile(r"^jobqueue listening on (?P<host>\S+):(?P<port>\d+) \(redis (?P<redis>\S+)\)$")

T = TypeVar("T")


def child_env(extra: Mapping[str, str], *, keep_jobq: bool = False) -> dict[str, str]:
    """Our environment plus `extra`; without our JOBQ_* variables unless `keep_jobq` (a
    developer's shell must not configure the process under test)."""
    inherited = {k: v for k, v in os.environ.items() if keep_jobq or not k.startswith("JOBQ_")}
    return {**inherited, **extra}


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class Child:
    """A child process whose merged stdout and stderr are kept as lines."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        keep_jobq_env: bool = False,
    ) -> None:
        self.args = list(command)
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(env or {}, keep_jobq=keep_jobq_env),
            cwd=cwd,
            text=True,
        )
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, name=f"output of {self.args[:3]}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, match: Callable[[str], T | None], timeout: float = WAIT_S) -> T:
        """The first non-None `match(line)` over the output so far and to come, within `timeout`."""
        found: list[T] = []
        scanned = 0

        def seen() -> bool:
            nonlocal scanned
            while not found and scanned < len(self.lines):
                if (result := match(self.lines[scanned])) is not None:
                    found.append(result)
                scanned += 1
            return bool(found) or self._ended

        with self._changed:
            self._changed.wait_for(seen, timeout)
        if not found:
            state = "exited" if self._ended else f"still running after {timeout} s"
            raise AssertionError(f"{' '.join(self.args)} {state} without the expected output:\n{self.output}")
        return found[0]

    def wait_for_text(self, text: str, timeout: float = WAIT_S) -> str:
        return self.wait_for_line(lambda line: line if text in line else None, timeout)

    def wait_for_count(self, matches: Callable[[str], bool], count: int, timeout: float = WAIT_S) -> None:
        """Waits until `count` lines of the output match."""
        with self._changed:
            done = self._changed.wait_for(lambda: sum(map(matches, self.lines)) >= count, timeout)
        if not done:
            raise AssertionError(f"{' '.join(self.args)}: fewer than {count} matching lines:\n{self.output}")

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = WAIT_S) -> int:
        """The exit code, once the child has exited and all of its output has been read."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    async def wait_async(self, timeout_s: float = WAIT_S) -> int:
        """`wait` without blocking the event loop (an in-process server under test runs on it)."""
        return await asyncio.to_thread(self.wait, timeout_s)

    def close(self) -> None:
        """Kills the child if it still runs (resuming it first if stopped), reaps it, and
        closes its pipe (no ResourceWarning)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait()
        self._reader.join()
        assert self.process.stdout is not None
        self.process.stdout.close()


class ChildProcess(Child):
    """A `python -m <module> ...` child (by default the `jobq` command)."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, *, module: str = "jobqueue_cli"
    ) -> None:
        super().__init__(python_module(module, *args), env)


class ServeProcess(ChildProcess):
    """`jobq serve` on 127.0.0.1 and a port the OS picks (read back from its startup line)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        super().__init__(["serve", "--host", "127.0.0.1", "--port", "0", *args], env)
        try:
            listening = self.wait_for_line(_LISTENING.match)
        except BaseException:
            self.close()  # the caller never gets the object, so it could not clean up
            raise
        self.port = int(listening["port"])
        self.redis_url = listening["redis"]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def children_of(pid: int) -> set[int]:
    """Every child of `pid`, whichever of its threads started it (Linux)."""
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie waiting to be reaped counts; Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> None:
    """Polls `condition` until it holds; fails saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)
