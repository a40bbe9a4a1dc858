"""When a schedule ticks: cron expressions (croniter) in a time zone's wall clock, or fixed
intervals. Pure functions of the definition and a time, so every server computes the same ticks.

A cron expression is read in the zone's wall clock and each wall-clock tick becomes the instant
it names, reading a wall time that does not exist (clocks go forward) with the offset before
the change: 02:30 in a gap from 02:00 to 03:00 is 03:30. A wall time that happens twice
(clocks go back) names its first instant only. The ticks are the set of those instants, so a
tick moved by a gap onto another is one tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

# Wider than any change of a zone's offset (the largest are 2 h): near a change, the ticks of
# this much wall time either side are looked at, since a gap moves its ticks by its length.
_SHIFT_MARGIN = timedelta(hours=3)
# Cron aliases croniter reads; any other expression has 5 fields, or 6 with seconds first.
ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MAX_CRON_CHARS = 256
UTC_ZONE = ZoneInfo("UTC")
# A wall-clock window near an offset change holds at most this many ticks (6 h of a tick
# per second); a bound on the loop whatever the expression.
_MAX_STEPS = 6 * 3600 + 10


class BadTiming(ValueError):
    """The expression or the zone cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Timing:
    """A schedule's ticks in Unix ms: `cron` in `zone`, or every `interval_ms` from `anchor_ms`,
    never before `start_ms` nor after `end_ms`."""

    cron: str | None = None
    interval_ms: int = 0
    zone: ZoneInfo = UTC_ZONE
    start_ms: int | None = None
    end_ms: int | None = None

    def next_after(self, after_ms: int) -> int | None:
        """The first tick later than `after_ms`; None when there is none (past the end)."""
        if self.start_ms is not None and after_ms < self.start_ms:
            after_ms = self.start_ms - 1
        tick = self._interval_next(after_ms) if self.cron is None else self._cron_next(after_ms)
        if tick is None or (self.end_ms is not None and tick > self.end_ms):
            return None
        return tick

    def latest(self, at_ms: int, above_ms: int, count: int) -> list[int]:
        """The last `count` ticks in (above_ms, at_ms], oldest first."""
        if self.end_ms is not None:
            at_ms = min(at_ms, self.end_ms)
        if self.start_ms is not None:
            above_ms = max(above_ms, self.start_ms - 1)
        ticks: list[int] = []
        while len(ticks) < count and at_ms > above_ms:
            tick = self._interval_at_or_before(at_ms) if self.cron is None else self._cron_at_or_before(at_ms)
            if tick is None or tick <= above_ms:
                break
            ticks.append(tick)
            at_ms = tick - 1
        ticks.reverse()
        return ticks

    # -- intervals -----------------------------------------------------------------------

    def _anchor(self) -> int:
        return 0 if self.start_ms is None else self.start_ms

    def _interval_next(self, after_ms: int) -> int:
        anchor = self._anchor()
        if after_ms < anchor:
            return anchor
        return anchor + ((after_ms - anchor) // self.interval_ms + 1) * self.interval_ms

    def _interval_at_or_before(self, at_ms: int) -> int | None:
        anchor = self._anchor()
        if at_ms < anchor:
            return None
        return anchor + (at_ms - anchor) // self.interval_ms * self.interval_ms

    # -- cron ----------------------------------------------------------------------------

    def _cron_next(self, after_ms: int) -> int | None:
        assert self.cron is not None
        wall = _wall(after_ms, self.zone)
        if not _offset_changes_near(after_ms, self.zone):
            cron = _iterator(self.cron, wall.replace(microsecond=0))
            for _ in range(_MAX_STEPS):  # one step but for an offset change just behind
                tick = _instant(_step(cron, forward=True), self.zone)
                if tick is None or tick > after_ms:
                    return tick
            return None
        best = None
        cron = _iterator(self.cron, wall - _SHIFT_MARGIN)
        for _ in range(_MAX_STEPS):
            moment = _step(cron, forward=True)
            if moment is None or (moment > wall + _SHIFT_MARGIN and best is not None):
                break
            tick = _instant(moment, self.zone)
            if tick is not None and tick > after_ms and (best is None or tick < best):
                best = tick
        return best

    def _cron_at_or_before(self, at_ms: int) -> int | None:
        assert self.cron is not None
        wall = _wall(at_ms, self.zone)
        start = wall.replace(microsecond=0) + timedelta(seconds=1)
        if not _offset_changes_near(at_ms, self.zone):
            cron = _iterator(self.cron, start)
            for _ in range(_MAX_STEPS):
                tick = _instant(_step(cron, forward=False), self.zone)
                if tick is None or tick <= at_ms:
                    return tick
            return None
        best = None
        cron = _iterator(self.cron, start + _SHIFT_MARGIN)
        for _ in range(_MAX_STEPS):
            moment = _step(cron, forward=False)
            if moment is None or (moment < wall - _SHIFT_MARGIN and best is not None):
                break
            tick = _instant(moment, self.zone)
            if tick is not None and tick <= at_ms and (best is None or tick > best):
                best = tick
        return best


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a cron expression this server takes, or None."""
    if not expression.strip() or len(expression) > MAX_CRON_CHARS:
        return f"must be 1 to {MAX_CRON_CHARS} characters"
    fields = expression.split()
    if expression.startswith("@"):
        if expression.strip() not in ALIASES:
            return f"must be one of {', '.join(ALIASES)}, or 5 or 6 fields"
    elif len(fields) not in (5, 6):
        return "must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first)"
    try:
        cron = _iterator(expression, datetime(2000, 1, 1))  # noqa: DTZ001 - wall-clock time, as croniter reads it
        if _step(cron, forward=True) is None:
            return "never matches a date"
    except (CroniterBadCronError, ValueError, KeyError) as error:
        return f"is not a valid cron expression ({error})"
    return None


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` ("" is UTC); BadTiming when unknown."""
    if not name:
        return UTC_ZONE
    if len(name) > 64 or name.startswith("/") or ".." in name:
        raise BadTiming("must be an IANA time zone name, e.g. Europe/Paris")
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as error:  # ZoneInfoNotFoundError is a KeyError
        raise BadTiming(f"{name!r} is not a known IANA time zone") from error


def _iterator(expression: str, start: datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=True)


def _step(cron: croniter, *, forward: bool) -> datetime | None:
    """The next (or previous) wall-clock match; None when there is none within croniter's
    search horizon (an expression such as 30 February)."""
    try:
        moment: datetime = cron.get_next(datetime) if forward else cron.get_prev(datetime)
    except CroniterBadDateError:
        return None
    return moment


def _wall(ms: int, zone: ZoneInfo) -> datetime:
    """The zone's wall-clock time at `ms`, without a zone."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime | None, zone: ZoneInfo) -> int | None:
    """The instant a wall-clock time names (fold 0: the first of two; in a gap, read with the
    offset before it)."""
    if wall is None:
        return None
    return round(wall.replace(tzinfo=zone, fold=0).timestamp() * 1000)


def _offset_changes_near(ms: int, zone: ZoneInfo) -> bool:
    margin = int(_SHIFT_MARGIN.total_seconds() * 1000)
    offsets = {_offset(ms + delta, zone) for delta in (-margin, 0, margin)}
    return len(offsets) > 1


def _offset(ms: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).utcoffset()
