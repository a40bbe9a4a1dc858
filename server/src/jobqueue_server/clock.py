"""Time and randomness for the store, the maintenance loop and job ids, injected in one place.

In production the scripts take "now" from Redis's TIME, so servers with skewed clocks agree;
the local clock only dates new ids and plans sleeps. A test injects one ManualClock into every
component: the scripts then run at its time, the maintenance loop plans by it, and backoff
jitter comes from its seeded generator, so a test moves time for everything at once.
"""

from __future__ import annotations

import random
import time


class Clock:
    """The real clock: the OS's wall time, Redis's TIME for the scripts, random jitter."""

    #: Whether scripts take "now" from this clock instead of Redis's TIME.
    drives_scripts = False

    def __init__(self) -> None:
        self._random = random.Random()

    def now_ms(self) -> int:
        """Wall-clock time in Unix milliseconds."""
        return time.time_ns() // 1_000_000

    def jitter(self) -> float:
        """A draw in [0, 1) for backoff jitter (not for secrets: tokens use `secrets`)."""
        return self._random.random()


class ManualClock(Clock):
    """Time that moves only when told to, and jitter from a seeded generator (or pinned)."""

    drives_scripts = True

    def __init__(self, start_ms: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.ms = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        self._random = random.Random(seed)
        self._pinned: float | None = None

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms

    def pin_jitter(self, draw: float | None) -> None:
        """Every later draw returns `draw` (None: back to the seeded generator)."""
        self._pinned = draw

    def jitter(self) -> float:
        return self._random.random() if self._pinned is None else self._pinned


SYSTEM_CLOCK = Clock()
