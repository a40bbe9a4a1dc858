"""Latency percentiles, and the CPU time of processes read from /proc (Linux)."""

from __future__ import annotations

import os
import statistics
import sys
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
