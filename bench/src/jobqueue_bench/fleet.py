"""The benchmark's worker processes as seen from the benchmark: start, go, watch, stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jobqueue_bench.processes import Child, child_env, python_module_argv, stop_all
from jobqueue_bench.stats import WorkerStats

WORKER_START_S = 60.0
WORKER_MODULE = "jobqueue_bench.noop_worker"


class BenchTimeout(RuntimeError):
    """The workers did not reach the expected state in time."""


class Fleet:
    """`workers` noop_worker processes, spread over the servers in turn."""

    def __init__(
        self,
        targets: Sequence[str],
        queue: str,
        *,
        workers: int,
        concurrency: int,
        folder: Path,
        flush_ms: float = 20.0,
    ) -> None:
        self.children: list[Child] = []
        self.files = [folder / f"worker-{index + 1}.json" for index in range(workers)]
        self._argvs = [
            python_module_argv(
                WORKER_MODULE, "--target", targets[index % len(targets)], "--queue", queue,
                "--concurrency", str(concurrency), "--stats", str(path), "--flush-ms", str(flush_ms),
            )
            for index, path in enumerate(self.files)
        ]  # fmt: skip

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def start(self) -> None:
        """Starts every worker at once and waits until each has imported everything."""
        env = child_env({})
        for index, argv in enumerate(self._argvs):
            self.children.append(Child(f"worker #{index + 1}", argv, env, stdin=True))
        for child in self.children:
            child.wait_for_line(lambda line: line if line == "ready" else None, WORKER_START_S)

    def go(self) -> None:
        for child in self.children:
            child.send_line("go")

    def snapshot(self) -> WorkerStats:
        return WorkerStats.combine(WorkerStats.read(path) for path in self.files)

    def all_connected(self) -> bool:
        """Every worker has opened its Lease stream."""
        return all(WorkerStats.read(path).connections > 0 for path in self.files)

    async def wait_until(
        self, done: Callable[[WorkerStats], bool], what: str, within_s: float, poll_s: float = 0.02
    ) -> WorkerStats:
        """Polls the stats files until `done` holds; BenchTimeout after `within_s` seconds."""
        deadline = time.monotonic() + within_s
        while not done(stats := self.snapshot()):
            if time.monotonic() > deadline:
                raise BenchTimeout(f"workers did not {what} within {within_s:.0f} s (seen: {stats})")
            for child in self.children:
                if child.process.poll() is not None:
                    raise BenchTimeout(f"{child.name} exited with status {child.process.returncode}")
            await asyncio.sleep(poll_s)
        return stats

    def stop(self) -> WorkerStats:
        """Stops the workers (they finish running jobs) and returns their final stats."""
        stop_all(self.children)
        self.children = []
        return self.snapshot()
