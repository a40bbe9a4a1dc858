"""When schedules tick: cron in a zone's wall clock across DST changes, intervals, start and end,
and which ticks each catch-up policy makes after downtime. Pure functions: no Redis."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.errors import FieldViolation
from jobqueue_server.scheduling import definition
from jobqueue_server.scheduling.definition import MISFIRE_GRACE_MS
from jobqueue_server.scheduling.timing import Timing, cron_problem

NEW_YORK = ZoneInfo("America/New_York")
MINUTE = 60_000


def at(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0, zone: ZoneInfo = NEW_YORK
) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=zone).timestamp() * 1000)


def wall(ms: int, zone: ZoneInfo = NEW_YORK) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%H:%M%z")


def run(timing: Timing, after_ms: int, count: int) -> list[int]:
    ticks = []
    for _ in range(count):
        after_ms = timing.next_after(after_ms) or 0
        ticks.append(after_ms)
    return ticks


def test_a_wall_time_skipped_by_clocks_going_forward_ticks_as_much_later() -> None:
    # 2026-03-08 02:00 EST becomes 03:00 EDT in New York.
    half_hourly = Timing(cron="*/30 * * * *", zone=NEW_YORK)
    ticks = run(half_hourly, at(2026, 3, 8, 1, 0), 5)

    # 02:00 and 02:30 do not exist: they tick at 03:00 and 03:30, which are ticks already.
    assert [wall(t) for t in ticks] == ["01:30-0500", "03:00-0400", "03:30-0400", "04:00-0400", "04:30-0400"]
    daily = Timing(cron="30 2 * * *", zone=NEW_YORK)
    assert wall(daily.next_after(at(2026, 3, 7, 12, 0)) or 0) == "03:30-0400"
    assert wall(daily.next_after(at(2026, 3, 8, 3, 10)) or 0) == "03:30-0400"  # not lost once past 03:00


def test_a_wall_time_that_happens_twice_ticks_once() -> None:
    # 2026-11-01 02:00 EDT becomes 01:00 EST: 01:00-01:59 happen twice.
    half_hourly = Timing(cron="*/30 * * * *", zone=NEW_YORK)
    ticks = run(half_hourly, at(2026, 11, 1, 0, 10), 5)

    assert [wall(t) for t in ticks] == ["00:30-0400", "01:00-0400", "01:30-0400", "02:00-0500", "02:30-0500"]
    assert ticks == sorted(set(ticks))
    daily = Timing(cron="30 1 * * *", zone=NEW_YORK)
    once = daily.latest(at(2026, 11, 1, 12, 0), at(2026, 10, 31, 12, 0), 10)
    assert [wall(t) for t in once] == ["01:30-0400"]


@given(
    start=st.integers(min_value=at(2026, 1, 1, 0, 0), max_value=at(2027, 1, 1, 0, 0)),
    expression=st.sampled_from(
        ["*/30 * * * *", "30 2 * * *", "0 */2 * * *", "15 1 * * 0", "*/20 59 1 * * *"]
    ),
)
def test_walking_forward_and_looking_back_find_the_same_ticks(start: int, expression: str) -> None:
    timing = Timing(cron=expression, zone=NEW_YORK)
    forward = run(timing, start, 6)
    assert forward == sorted(set(forward)) and forward[0] > start

    assert timing.latest(forward[-1], start, 6) == forward


def test_seconds_come_first_in_six_fields_and_aliases_are_read() -> None:
    every_20_s = Timing(cron="*/20 * * * * *")
    assert run(every_20_s, at(2026, 1, 1, 0, 0, 5, zone=ZoneInfo("UTC")), 3) == [
        at(2026, 1, 1, 0, 0, s, zone=ZoneInfo("UTC")) for s in (20, 40)
    ] + [at(2026, 1, 1, 0, 1, 0, zone=ZoneInfo("UTC"))]
    hourly = Timing(cron="@hourly")
    assert hourly.next_after(at(2026, 1, 1, 5, 59, zone=ZoneInfo("UTC"))) == at(
        2026, 1, 1, 6, 0, zone=ZoneInfo("UTC")
    )


def test_intervals_count_from_the_start_or_the_epoch_and_respect_the_end() -> None:
    hourly = Timing(interval_ms=3_600_000)
    assert hourly.next_after(at(2026, 1, 1, 5, 10, zone=ZoneInfo("UTC"))) == at(
        2026, 1, 1, 6, 0, zone=ZoneInfo("UTC")
    )

    start, end = 1_000_500, 1_000_500 + 3 * 7_000
    bounded = Timing(interval_ms=7_000, start_ms=start, end_ms=end)
    assert bounded.next_after(0) == start
    assert run(bounded, start, 3) == [start + 7_000, start + 14_000, start + 21_000]
    assert bounded.next_after(end) is None
    assert bounded.latest(10**9, 0, 100) == [start + k * 7_000 for k in range(4)]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "1 to 256"),
        ("* * * *", "5 fields"),
        ("* * * * * * *", "5 fields"),
        ("61 * * * *", "not a valid cron"),
        ("0 0 30 2 *", "never matches"),
        ("@often", "must be one of"),
    ],
)
def test_bad_cron_expressions_are_refused_with_the_reason(expression: str, problem: str) -> None:
    assert problem in (cron_problem(expression) or "")


def _schedule(catch_up: int, limit: int = 0) -> definition.Definition:
    return definition.read(
        svc.Schedule(
            name="every-minute",
            cron="* * * * *",
            template=svc.JobTemplate(queue="q"),
            catch_up=catch_up,  # type: ignore[arg-type]
            catch_up_limit=limit,
        )
    )


DOWN_FROM = at(2026, 6, 1, 12, 0, zone=ZoneInfo("UTC"))
BACK_AT = DOWN_FROM + 10 * MINUTE + 30_000  # ten ticks later, 30 s past the last


def test_skip_makes_only_the_ticks_less_than_a_minute_late() -> None:
    ticks = _schedule(svc.CATCH_UP_POLICY_SKIP).ticks_due(DOWN_FROM, BACK_AT)
    assert ticks == [DOWN_FROM + 10 * MINUTE]
    assert _schedule(svc.CATCH_UP_POLICY_UNSPECIFIED).ticks_due(DOWN_FROM, BACK_AT) == ticks
    assert all(BACK_AT - t <= MISFIRE_GRACE_MS for t in ticks)


def test_once_makes_one_job_for_the_missed_ticks_besides_those_on_time() -> None:
    ticks = _schedule(svc.CATCH_UP_POLICY_ONCE).ticks_due(DOWN_FROM, BACK_AT)
    assert ticks == [DOWN_FROM + 9 * MINUTE, DOWN_FROM + 10 * MINUTE]


def test_all_makes_every_missed_tick_up_to_its_limit_the_latest_ones() -> None:
    assert _schedule(svc.CATCH_UP_POLICY_ALL).ticks_due(DOWN_FROM, BACK_AT) == [
        DOWN_FROM + k * MINUTE for k in range(1, 11)
    ]
    assert _schedule(svc.CATCH_UP_POLICY_ALL, limit=3).ticks_due(DOWN_FROM, BACK_AT) == [
        DOWN_FROM + k * MINUTE for k in (8, 9, 10)
    ]


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (svc.Schedule(name="n", template=svc.JobTemplate(queue="q")), "schedule.cron"),
        (svc.Schedule(name="n", cron="* * * * *"), "schedule.template.queue"),
        (
            svc.Schedule(name="bad name", cron="* * * * *", template=svc.JobTemplate(queue="q")),
            "schedule.name",
        ),
        (
            svc.Schedule(
                name="n", cron="* * * * *", time_zone="Mars/Olympus", template=svc.JobTemplate(queue="q")
            ),
            "schedule.time_zone",
        ),
        (
            svc.Schedule(
                name="n", cron="* * * * *", time_zone="../../etc/passwd", template=svc.JobTemplate(queue="q")
            ),
            "schedule.time_zone",
        ),
        (
            svc.Schedule(name="n", interval=Duration(nanos=5_000_000), template=svc.JobTemplate(queue="q")),
            "schedule.interval",
        ),
        (
            svc.Schedule(
                name="n", interval=Duration(seconds=5), time_zone="UTC", template=svc.JobTemplate(queue="q")
            ),
            "schedule.time_zone",
        ),
        (
            svc.Schedule(
                name="n", cron="* * * * *", template=svc.JobTemplate(queue="q"), catch_up_limit=1001
            ),
            "schedule.catch_up_limit",
        ),
        (
            svc.Schedule(
                name="n",
                cron="* * * * *",
                template=svc.JobTemplate(queue="q"),
                start_time=Timestamp(seconds=100),
                end_time=Timestamp(seconds=50),
            ),
            "schedule.end_time",
        ),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field(schedule: svc.Schedule, field: str) -> None:
    with pytest.raises(FieldViolation) as refused:
        definition.read(schedule)
    assert refused.value.field == field
