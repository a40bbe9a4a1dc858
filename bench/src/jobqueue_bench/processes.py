"""Child processes in their own sessions: started, watched through their stdout, stopped.

Each child leads its own process group, so a Ctrl-C on the terminal reaches only us, and
stopping a child signals its whole group (SIGTERM, then SIGKILL after a grace period) by
its own id. A thread drains each child's stdout, so a chatty child never blocks on a full
pipe; stderr is inherited (children's logs go to our stderr).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

STOP_GRACE_S = 10.0


class ChildFailed(RuntimeError):
    """A child exited or stayed silent where a line was expected."""


def python_module_argv(module: str, *args: str) -> list[str]:
    """`python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment without JOBQ_* variables (a shell's settings must not leak into the
    measured processes), plus `extra`."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("JOBQ_")}
    return {**inherited, **extra}


class Child:
    """One child process whose stdout lines are kept and can be waited for."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, stdin: bool = False
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=dict(env),
            text=True,
            start_new_session=True,
        )
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, name=f"stdout of {name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for_line(self, match: Callable[[str], T | None], timeout: float) -> T:
        """The first non-None `match(line)` over the output so far and to come."""
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
            state = "exited" if self._ended else f"said nothing expected within {timeout:.0f} s"
            raise ChildFailed(f"{self.name} (pid {self.pid}) {state}")
        return found[0]

    def send_line(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def terminate(self) -> None:
        """Sends SIGTERM to the child's process group (if it still runs)."""
        self._signal_group(signal.SIGTERM)

    def _signal_group(self, signum: signal.Signals) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)  # its own group: the group id is its pid

    def reap(self, timeout: float = STOP_GRACE_S) -> None:
        """Waits for the child to exit, SIGKILLs its group after `timeout`, and closes its pipes."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        self._reader.join(timeout)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a broken pipe, from a child killed mid-write
                    pipe.close()


def stop_all(children: Sequence[Child], timeout: float = STOP_GRACE_S) -> None:
    """SIGTERM to every child at once, then reaps each (SIGKILL for those that linger)."""
    for child in children:
        child.terminate()
    for child in children:
        child.reap(timeout)
