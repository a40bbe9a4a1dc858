"""Delays between attempts: the worker's reconnect policy and the producer's poll schedule."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class ReconnectBackoff:
    """Exponential backoff with full jitter, reset once a connection stayed healthy.

    The n-th consecutive failure waits a uniform random time in
    ``[0, min(cap, base * 2**n)]`` (AWS's "full jitter"), so a fleet of workers that lost
    the same server does not come back in lockstep.
    """

    base: float = 0.1
    cap: float = 10.0
    #: A connection that lasted this long (seconds) counts as healthy: the next failure
    #: starts again from `base`.
    reset_after: float = 30.0
    failures: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failure."""
        # The exponent is bounded so a long outage cannot overflow the float.
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._random.uniform(0.0, ceiling)

    def connection_ended(self, lasted: float) -> None:
        """Reports how long (seconds) the last connection was up."""
        if lasted >= self.reset_after:
            self.reset()

    def reset(self) -> None:
        self.failures = 0


def poll_intervals(first: float = 0.01, factor: float = 1.5, cap: float = 0.5) -> Iterator[float]:
    """Growing waits between status polls: quick for short jobs, at most `cap` for long ones."""
    interval = first
    while True:
        yield interval
        interval = min(cap, interval * factor)


def poll_timeout(default: float, deadline: float | None, now: float) -> float:
    """One poll's call timeout: `default`, cut to what is left before `deadline` (>= 10 ms)."""
    return default if deadline is None else max(0.01, min(default, deadline - now))
