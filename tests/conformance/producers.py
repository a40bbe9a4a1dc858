"""The conformance producers the kit runs, one per language: how to start one, and how to talk
to it (JSON lines on its stdin and stdout, README.md "Producer conformance")."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from tests.conformance.workers import GO_CLIENT, NODE_CLIENT, ROOT, WorkerUnavailable

# The longest a producer may take to answer one command (a `wait` asks for less).
ANSWER_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
# An answer is a few KiB at most; a longer line means the program is broken.
MAX_ANSWER_CHARS = 1024 * 1024


def python_command(_: Path) -> list[str]:
    return [sys.executable, "-m", "tests.conformance.python_producer"]


def go_command(build_dir: Path) -> list[str]:
    if shutil.which("go") is None or not (GO_CLIENT / "cmd" / "conformance-producer").is_dir():
        raise WorkerUnavailable("go or clients/go/cmd/conformance-producer is missing")
    binary = build_dir / "go-conformance-producer"
    if not binary.exists():
        subprocess.run(
            ["go", "build", "-o", str(binary), "./cmd/conformance-producer"], cwd=GO_CLIENT, check=True
        )
    return [str(binary)]


def node_command(_: Path) -> list[str]:
    script = NODE_CLIENT / "dist" / "conformance-producer.js"
    if shutil.which("node") is None or not script.exists():
        raise WorkerUnavailable(
            "node or clients/node/dist/conformance-producer.js is missing "
            "(npm ci && npm run build in clients/node)"
        )
    return ["node", str(script)]


PRODUCERS = {"python": python_command, "go": go_command, "node": node_command}


class ProducerProcess:
    """A conformance producer as a subprocess: one command in, one answer out, each bounded."""

    def __init__(self, command: list[str], *, target: str, log: Path) -> None:
        self._log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen(
            command, env={**os.environ, "JOBQ_TARGET": target}, cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        # Lines arrive on a thread of their own, so a silent program cannot block a read.
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._follow, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _follow(self, stdout: IO[str] | None) -> None:
        assert stdout is not None
        while line := stdout.readline(MAX_ANSWER_CHARS):
            self._answers.put(line)
        self._answers.put(None)  # the program closed its stdout

    def call(self, op: str, timeout_s: float = ANSWER_TIMEOUT_S, **arguments: Any) -> dict[str, Any]:
        """Sends one command and returns its answer: {"ok": ...} or {"error": {...}}."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no answer to {op} within {timeout_s} s\n{self.stderr}") from None
        if line is None or not line.endswith("\n"):
            raise AssertionError(
                f"the producer ended or wrote a broken line on {op}: {line!r}\n{self.stderr}"
            )
        answer = json.loads(line)
        assert isinstance(answer, dict) and answer.keys() in ({"ok"}, {"error"}), answer
        return answer

    @property
    def stderr(self) -> str:
        self._stderr.flush()
        return self._log.read_text()[-10_000:]

    def close(self) -> int:
        """Ends stdin, as the kit does when it is done; returns the exit code."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(EXIT_TIMEOUT_S)
        self._reader.join(EXIT_TIMEOUT_S)
        return code

    def stop(self) -> None:
        """Ends the process however it is (tests' cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(EXIT_TIMEOUT_S)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            if stream is not None:
                stream.close()
