"""Latency percentiles, and the CPU time of processes (and of their descendants) read from /proc (Linux)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PERCENTILES = (50, 90, 99)


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of the samples in ms ({} when there are none).

    The percentiles are `statistics.quantiles(..., method="inclusive")`, as bench/PROTOCOL.md asks.
    """
    if not samples_ms:
        return {}
    if len(samples_ms) == 1:
        only = samples_ms[0]
        return {**{f"p{p}": only for p in PERCENTILES}, "max": only}
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {**{f"p{p}": cuts[p - 1] for p in PERCENTILES}, "max": max(samples_ms)}


def rounded_summary(samples_ms: Sequence[float], digits: int = 3) -> dict[str, float] | None:
    """`latency_summary` rounded for a report; None when there are no samples."""
    summary = latency_summary(samples_ms)
    return {name: round(value, digits) for name, value in summary.items()} or None


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process and all its threads; None off Linux or once it is gone."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User plus system CPU time of this process (all its threads), to the nanosecond (os.times
    counts in clock ticks, 10 ms: too coarse for a short measurement)."""
    return time.process_time()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` ([] off Linux or once it is gone).

    /proc/<pid>/task/<tid>/children lists each thread's children; a kernel built without it
    is answered by scanning every process's parent id.
    """
    task = Path(f"/proc/{pid}/task")
    try:
        files = list(task.glob("*/children"))
    except OSError:
        return []
    if not files and task.is_dir():
        return _children_by_scan(pid)
    found: list[int] = []
    for path in files:
        try:
            found += [int(word) for word in path.read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return found


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:  # field 4 of proc(5): the parent
            found.append(int(stat.parent.name))
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, parents first: a supervisor and the processes it started
    (a process's own CPU time leaves out its children's, so each is read on its own)."""
    tree = [pid]
    for parent in tree:  # grows while it is walked: breadth first
        tree += [child for child in children(parent) if child not in tree]
    return tree


class CpuMeter:
    """CPU seconds that a set of processes spent between `start` and `stop`."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._before: list[float | None] = []

    def start(self) -> None:
        self._before = [process_cpu_seconds(pid) for pid in self.pids]

    def stop(self) -> float | None:
        """The total over the processes; None when any of them could not be read."""
        if not self.pids:
            return None
        after = [process_cpu_seconds(pid) for pid in self.pids]
        total = 0.0
        for before, now in zip(self._before, after, strict=True):
            if before is None or now is None:
                return None
            total += now - before
        return total
