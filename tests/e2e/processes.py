"""Real `jobq` processes for end-to-end tests: started, watched through their output, cleaned up.

A thread drains each child's output as it comes: a child writing logs into a pipe nobody reads
blocks once the pipe is full, which would look like a hang in the code under test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

STARTUP_S = 30.0
EXIT_S = 30.0
_LISTENING = re.compile(r"^jobqueue listening on (?P<host>\S+):(?P<port>\d+) \(redis (?P<redis>\S+)\)$")

T = TypeVar("T")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment without its JOBQ_* variables (a developer's shell must not configure the
    process under test), plus `extra`."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("JOBQ_")}
    return {**inherited, **extra}


class ChildProcess:
    """A `python -m <module> ...` child whose merged stdout and stderr are kept as lines."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, *, module: str = "jobqueue_cli"
    ) -> None:
        self.args = [sys.executable, "-m", module, *args]
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(env or {}),
            text=True,
        )
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, name=f"output of {self.args}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_line(self, match: Callable[[str], T | None], timeout: float = STARTUP_S) -> T:
        """The first non-None `match(line)` over the output so far and to come, within `timeout`."""
        found: list[T] = []
        scanned = 0

        def seen() -> bool:
            nonlocal scanned
            while not found and scanned < len(self._lines):
                if (result := match(self._lines[scanned])) is not None:
                    found.append(result)
                scanned += 1
            return bool(found) or self._ended

        with self._changed:
            self._changed.wait_for(seen, timeout)
        if not found:
            state = "exited" if self._ended else f"still running after {timeout} s"
            raise AssertionError(f"{' '.join(self.args)} {state} without the expected output:\n{self.output}")
        return found[0]

    def wait_for_text(self, text: str, timeout: float = STARTUP_S) -> str:
        return self.wait_for_line(lambda line: line if text in line else None, timeout)

    def send_signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = EXIT_S) -> int:
        """The exit code, once the child has exited and all of its output has been read."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def close(self) -> None:
        """Kills the child if it still runs, reaps it, and closes its pipe (no ResourceWarning)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join()
        assert self.process.stdout is not None
        self.process.stdout.close()


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
