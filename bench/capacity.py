"""How many cores the machine gives at once, measured: a shared or throttled virtual machine may
report 2 cores and run two busy processes at half speed each, and every ratio of a run moves
with it. Recorded at the start and the end of each bench/run."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

SPIN_CPU_S = 0.5  # CPU seconds each process spends


def _spin(cpu_s: float, go: Any, walls: Any) -> None:
    go.wait()  # all start together, after every process has started up
    began = time.monotonic()
    until = time.process_time() + cpu_s
    x = 0
    while time.process_time() < until:
        for i in range(10_000):
            x += i
    walls.put(time.monotonic() - began)


def parallel_cores(processes: int | None = None, cpu_s: float = SPIN_CPU_S) -> float:
    """CPU seconds done per wall second by `processes` (default: one per core) busy processes:
    the core count on a machine that gives its cores in full, less on one that shares them."""
    count = processes or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    go, walls = context.Event(), context.Queue()
    workers = [context.Process(target=_spin, args=(cpu_s, go, walls)) for _ in range(count)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # start-up: the interpreters load before the spin
    go.set()
    wall = max(walls.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join()
    return round(count * cpu_s / wall, 2)


if __name__ == "__main__":
    print(f"{parallel_cores()} cores at once")
