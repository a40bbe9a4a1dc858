"""Random sequences of every transition on the real store, checked after each step.

Hypothesis drives an async test directly (pytest-asyncio runs ``@given`` on coroutine tests;
Hypothesis' sync-only RuleBasedStateMachine cannot await the store). Each example draws a
list of steps, runs them against a fresh queue on the test's ManualClock, and after every step
checks the raw Redis structures twice over:

- against themselves: every job record sits in exactly the one structure its `state` names,
  Stats counts equal the structure sizes, only active jobs carry a token, attempts stay
  within max_attempts;
- against a plain-Python model of the state machine: the order of every ready list, the
  score of every sorted-set member, each job's state, attempts and error count, and every
  call's result (ids, duplicates, codes, due times, deadlines, sweep counts).

A failure prints the shortest list of steps Hypothesis found that breaks it (the store's two
random inputs are pinned so a list of steps replays exactly). Run with
``--hypothesis-show-statistics`` to see how often each transition's main path was taken.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost, WrongState
from jobqueue_server.store import (
    Backoff,
    ExtendOutcome,
    FailOutcome,
    JobState,
    NewJob,
    Priority,
    Settle,
    Store,
    StoreConfig,
)
from jobqueue_server.store.keys import QueueKeys
from tests.store.helpers import lease_order, raw_jobs, zset

RETENTION_MS = 8_000
IDEMPOTENCY_WINDOW_MS = 6_000
DEFAULT_LEASE_MS = 4_000
MAX_ERRORS_KEPT = 2
BACKOFF = Backoff(initial_ms=500, max_ms=3_000, multiplier=2.0, jitter=0.5)
FINISHED = (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)
_LEASED = (JobState.ACTIVE,)

_queue_numbers = itertools.count()


# -- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    priority: Priority
    delay_ms: int
    max_attempts: int
    lease_ms: int
    idempotency_key: str


@dataclass(frozen=True)
class Enqueue:
    specs: tuple[Spec, ...]


@dataclass(frozen=True)
class Lease:
    count: int
    lease_ms: int


@dataclass(frozen=True)
class Ack:
    pick: int
    stale: bool


@dataclass(frozen=True)
class Fail:
    pick: int
    stale: bool
    non_retryable: bool
    retry_delay_ms: int
    jitter_draw: int


@dataclass(frozen=True)
class Extend:
    pick: int
    stale: bool
    lease_ms: int


@dataclass(frozen=True)
class Release:
    pick: int
    stale: bool


@dataclass(frozen=True)
class Advance:
    ms: int


@dataclass(frozen=True)
class Sweep:
    pass


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class Retry:
    pick: int


Step = Enqueue | Lease | Ack | Fail | Extend | Release | Advance | Sweep | Cancel | Retry

_pick = st.integers(0, 200)
_retry_delays = st.sampled_from([-1, -1, 0, 700])
_draws = st.integers(0, 999_999)
_specs = st.builds(
    Spec,
    priority=st.sampled_from(Priority),
    delay_ms=st.sampled_from([0, 0, 0, 1_000, 5_000]),
    max_attempts=st.integers(1, 3),
    lease_ms=st.sampled_from([0, 0, 2_000, 10_000]),
    idempotency_key=st.sampled_from(["", "", "", "", "", "a", "b"]),
)
# Each kind of step with its weight: jobs must exist and be leased before settling them matters.
_WEIGHTED_STEPS: list[st.SearchStrategy[Step]] = [
    *[st.builds(Enqueue, st.lists(_specs, min_size=1, max_size=4).map(tuple))] * 3,
    *[st.builds(Lease, count=st.integers(1, 4), lease_ms=st.sampled_from([0, 3_000]))] * 3,
    *[st.just(Sweep())] * 2,
    *[st.builds(Advance, st.sampled_from([1, 500, 2_000, 5_000, 9_000]))] * 2,
    st.builds(Ack, _pick, st.booleans()),
    *[st.builds(Fail, _pick, st.booleans(), st.sampled_from([False, False, True]), _retry_delays, _draws)]
    * 2,
    st.builds(Extend, _pick, st.booleans(), st.sampled_from([0, 6_000])),
    st.builds(Release, _pick, st.booleans()),
    st.builds(Cancel, _pick),
    st.builds(Retry, _pick),
]


def _itself(strategy: st.SearchStrategy[Step]) -> st.SearchStrategy[Step]:
    return strategy


STEPS = st.sampled_from(_WEIGHTED_STEPS).flatmap(_itself)


# -- the model ---------------------------------------------------------------------------------


@dataclass
class ModelJob:
    ulid: str
    priority: Priority
    max_attempts: int
    lease_ms: int
    state: JobState
    due_ms: int
    attempts: int = 0
    deadline_ms: int = 0
    finish_ms: int = 0
    token: str = ""
    tokens: list[str] = field(default_factory=list)
    errors: int = 0
    deleted: bool = False


@dataclass
class Model:
    queue: str
    now: int
    jobs: dict[str, ModelJob] = field(default_factory=dict)
    ready: dict[Priority, deque[str]] = field(default_factory=lambda: {p: deque() for p in Priority})
    idempotency: dict[str, tuple[str, int]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def job_id(self, job: ModelJob) -> str:
        return f"{self.queue}:{job.ulid}"

    def pick(self, pick: int, fitting: tuple[JobState, ...]) -> ModelJob | None:
        """Mostly a job in a state the step applies to, sometimes any job (to be refused)."""
        jobs = list(self.jobs.values())
        fit = [j for j in jobs if j.state in fitting and not j.deleted]
        candidates = fit if fit and pick % 4 != 3 else jobs
        return candidates[pick // 4 % len(candidates)] if candidates else None

    def token_for(self, job: ModelJob, stale: bool) -> str:
        """The token a worker would hold: the current one, or one an earlier lease held."""
        if not stale:
            return job.token or (job.tokens[-1] if job.tokens else "never-leased")
        return job.tokens[-2] if len(job.tokens) > 1 else "stale-token"

    def holds_lease(self, job: ModelJob, token: str) -> bool:
        return not job.deleted and job.state == JobState.ACTIVE and token == job.token

    def add_error(self, job: ModelJob) -> None:
        job.errors = min(job.errors + 1, MAX_ERRORS_KEPT)

    def finish(self, job: ModelJob, state: JobState) -> None:
        job.state, job.finish_ms, job.token = state, self.now, ""

    def take_back(self, job: ModelJob) -> bool:
        """A lost lease: dead when out of attempts, else the front of its ready list. True if dead."""
        self.add_error(job)
        if job.attempts >= job.max_attempts:
            self.finish(job, JobState.DEAD)
            return True
        job.state, job.token = JobState.QUEUED, ""
        self.ready[job.priority].appendleft(job.ulid)
        return False

    def next_wake(self) -> int | None:
        times = [j.due_ms for j in self.live(JobState.SCHEDULED)] + [
            j.deadline_ms for j in self.live(JobState.ACTIVE)
        ]
        return min(times, default=None)

    def live(self, state: JobState) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.state == state and not j.deleted]


def _bounds_of_backoff(attempts: int) -> tuple[int, int]:
    delay = min(BACKOFF.max_ms, BACKOFF.initial_ms * BACKOFF.multiplier ** (attempts - 1))
    return math.floor(delay * (1 - BACKOFF.jitter)), math.floor(delay)


# -- running one step on the store and the model ------------------------------------------------


_ulid_numbers = itertools.count(1)


def _next_ulid(_now_ms: int) -> str:
    """Ulids that grow with each job: ties in a sorted set then break the same way on a replay."""
    return f"{next(_ulid_numbers):026d}"


class Run:
    def __init__(self, store: Store, clock: ManualClock, model: Model) -> None:
        self.store, self.clock, self.m = store, clock, model

    async def step(self, step: Step) -> None:
        handler = getattr(self, f"_{type(step).__name__.lower()}")
        await handler(step)

    async def _enqueue(self, step: Enqueue) -> None:
        m = self.m
        jobs = [
            NewJob(
                queue=m.queue,
                priority=s.priority,
                delay_ms=s.delay_ms,
                max_attempts=s.max_attempts,
                lease_ms=s.lease_ms,
                backoff=BACKOFF,
                idempotency_key=s.idempotency_key,
            )
            for s in step.specs
        ]
        outcomes = (await self.store.enqueue(jobs)).outcomes
        for spec, outcome in zip(step.specs, outcomes, strict=True):
            ulid = outcome.job_id.rpartition(":")[2]
            seen = m.idempotency.get(spec.idempotency_key)
            if spec.idempotency_key and seen is not None and seen[1] > m.now:
                assert (outcome.duplicate, ulid) == (True, seen[0])
                event("enqueue: duplicate")
                continue
            assert not outcome.duplicate and ulid not in m.jobs
            state = JobState.SCHEDULED if spec.delay_ms > 0 else JobState.QUEUED
            m.jobs[ulid] = ModelJob(
                ulid, spec.priority, spec.max_attempts, spec.lease_ms, state, m.now + spec.delay_ms
            )
            if state == JobState.QUEUED:
                m.ready[spec.priority].append(ulid)
            if spec.idempotency_key:
                m.idempotency[spec.idempotency_key] = (ulid, m.now + IDEMPOTENCY_WINDOW_MS)

    async def _lease(self, step: Lease) -> None:
        m = self.m
        expected: list[str] = []
        for priority in (Priority.HIGH, Priority.NORMAL, Priority.LOW):
            while m.ready[priority] and len(expected) < step.count:
                expected.append(m.ready[priority].popleft())
        leased = (await self.store.lease(m.queue, step.count, step.lease_ms, "worker")).jobs
        assert [r.job_id.rpartition(":")[2] for r in leased] == expected
        for record in leased:
            job = m.jobs[record.job_id.rpartition(":")[2]]
            assert record.token not in m.tokens, "a lease token was issued twice"
            job.attempts += 1
            job.state, job.token = JobState.ACTIVE, record.token
            job.deadline_ms = m.now + (job.lease_ms or step.lease_ms or DEFAULT_LEASE_MS)
            job.tokens.append(record.token)
            m.tokens.add(record.token)
            assert (record.attempts, record.lease_expire_ms) == (job.attempts, job.deadline_ms)

    async def _ack(self, step: Ack) -> None:
        m = self.m
        job = m.pick(step.pick, _LEASED)
        if job is None:
            return
        token = m.token_for(job, step.stale)
        (outcome,) = await self.store.ack([Settle(m.job_id(job), token)])
        if m.holds_lease(job, token):
            assert outcome is None
            event("ack: completed")
            m.finish(job, JobState.COMPLETED)
        else:
            assert isinstance(outcome, JobNotFound if job.deleted else LeaseLost), outcome

    async def _fail(self, step: Fail) -> None:
        m = self.m
        job = m.pick(step.pick, _LEASED)
        if job is None:
            return
        token = m.token_for(job, step.stale)
        settle = Settle(
            m.job_id(job),
            token,
            error="boom",
            non_retryable=step.non_retryable,
            retry_delay_ms=step.retry_delay_ms,
        )
        self.clock.pin_jitter(step.jitter_draw / 1_000_000)
        (outcome,) = await self.store.fail([settle])
        if not m.holds_lease(job, token):
            assert isinstance(outcome, JobNotFound if job.deleted else LeaseLost), outcome
            return
        assert isinstance(outcome, FailOutcome), outcome
        m.add_error(job)
        if step.non_retryable or job.attempts >= job.max_attempts:
            assert outcome == FailOutcome(JobState.DEAD, 0)
            event("fail: dead")
            m.finish(job, JobState.DEAD)
            return
        low, high = (
            (step.retry_delay_ms,) * 2 if step.retry_delay_ms >= 0 else _bounds_of_backoff(job.attempts)
        )
        assert outcome.state == JobState.SCHEDULED and low <= outcome.due_ms - m.now <= high, (
            outcome,
            low,
            high,
        )
        event("fail: scheduled")
        job.state, job.due_ms, job.token = JobState.SCHEDULED, outcome.due_ms, ""

    async def _extend(self, step: Extend) -> None:
        m = self.m
        job = m.pick(step.pick, _LEASED)
        if job is None:
            return
        token = m.token_for(job, step.stale)
        (outcome,) = await self.store.extend([Settle(m.job_id(job), token, lease_ms=step.lease_ms)])
        if m.holds_lease(job, token):
            job.deadline_ms = m.now + (step.lease_ms or job.lease_ms or DEFAULT_LEASE_MS)
            assert outcome == ExtendOutcome(job.deadline_ms)
            event("extend: extended")
        else:
            assert isinstance(outcome, JobNotFound if job.deleted else LeaseLost), outcome

    async def _release(self, step: Release) -> None:
        m = self.m
        job = m.pick(step.pick, _LEASED)
        if job is None:
            return
        token = m.token_for(job, step.stale)
        holds = m.holds_lease(job, token)
        assert await self.store.release([(m.job_id(job), token)]) == int(holds)
        if holds:
            event("release: taken back")
            m.take_back(job)

    async def _advance(self, step: Advance) -> None:
        self.clock.advance(step.ms)
        self.m.now = self.clock.ms

    async def _sweep(self, _: Sweep) -> None:
        m = self.m
        due = sorted((j.due_ms, j.ulid) for j in m.live(JobState.SCHEDULED) if j.due_ms <= m.now)
        for _due, ulid in due:
            m.jobs[ulid].state = JobState.QUEUED
            m.ready[m.jobs[ulid].priority].append(ulid)
        expired = sorted((j.deadline_ms, j.ulid) for j in m.live(JobState.ACTIVE) if j.deadline_ms <= m.now)
        dead = sum(m.take_back(m.jobs[ulid]) for _deadline, ulid in expired)
        trimmed = 0
        for job in m.jobs.values():
            if job.state in FINISHED and not job.deleted and job.finish_ms <= m.now - RETENTION_MS:
                job.deleted, trimmed = True, trimmed + 1

        result = await self.store.sweep(m.queue)
        for name, count in (
            ("promoted", len(due)),
            ("requeued", len(expired) - dead),
            ("dead", dead),
            ("trimmed", trimmed),
        ):
            if count:
                event(f"sweep: {name}")

        expected = (len(due), len(expired) - dead, dead, trimmed, m.next_wake())
        assert (result.promoted, result.requeued, result.dead, result.trimmed, result.next_due_ms) == expected

    async def _cancel(self, step: Cancel) -> None:
        m = self.m
        job = m.pick(step.pick, (JobState.QUEUED, JobState.SCHEDULED, JobState.ACTIVE))
        if job is None:
            return
        if job.deleted:
            expected_error: type[Exception] | None = JobNotFound
        elif job.state in (JobState.QUEUED, JobState.SCHEDULED, JobState.ACTIVE):
            expected_error = None
            event(f"cancel: {job.state}")
            if job.state == JobState.QUEUED:
                m.ready[job.priority].remove(job.ulid)
            m.finish(job, JobState.CANCELLED)
        else:
            expected_error = WrongState
        await self._expect(self.store.cancel(m.job_id(job)), expected_error)

    async def _retry(self, step: Retry) -> None:
        m = self.m
        job = m.pick(step.pick, (JobState.DEAD, JobState.CANCELLED))
        if job is None:
            return
        if job.deleted:
            expected_error: type[Exception] | None = JobNotFound
        elif job.state in (JobState.DEAD, JobState.CANCELLED):
            expected_error = None
            event(f"retry: {job.state}")
            job.state, job.attempts, job.due_ms = JobState.QUEUED, 0, m.now
            m.ready[job.priority].append(job.ulid)
        else:
            expected_error = WrongState
        await self._expect(self.store.retry(m.job_id(job)), expected_error)

    @staticmethod
    async def _expect(call: Any, error: type[Exception] | None) -> None:
        try:
            await call
        except (JobNotFound, WrongState) as exc:
            assert error is not None and isinstance(exc, error), exc
        else:
            assert error is None, f"expected {error}"


# -- the checks --------------------------------------------------------------------------------


async def _raw_structures(redis: Redis, keys: QueueKeys) -> dict[str, dict[str, float]]:
    """Each structure's members, ready lists as {ulid: position from the front}."""
    raw: dict[str, dict[str, float]] = {}
    for name, key in zip(("high", "normal", "low"), keys.ready, strict=True):
        members = await lease_order(redis, key)
        assert len(set(members)) == len(members), f"a job appears twice in ready list {name}"
        raw[f"ready:{name}"] = {ulid: float(i) for i, ulid in enumerate(members)}
    for name in ("scheduled", "active", "completed", "dead", "cancelled"):
        raw[name] = await zset(redis, getattr(keys, name))
    return raw


def _structure_of(fields: dict[str, str]) -> str:
    if fields["state"] == JobState.QUEUED:
        return "ready:" + Priority(int(fields["priority"])).name.lower()
    return fields["state"]


def _check_self_consistency(structures: dict[str, dict[str, float]], jobs: dict[str, dict[str, str]]) -> None:
    homes: dict[str, list[str]] = {}
    for name, members in structures.items():
        for ulid in members:
            homes.setdefault(ulid, []).append(name)
    assert homes.keys() == jobs.keys(), "every job record has a place, and every place a job record"
    for ulid, fields in jobs.items():
        state, attempts, max_attempts = fields["state"], int(fields["attempts"]), int(fields["max_attempts"])
        assert homes[ulid] == [_structure_of(fields)], (ulid, fields, homes[ulid])
        active = state == JobState.ACTIVE
        assert ("token" in fields) == active and ("lease_expire_ms" in fields) == active, fields
        if active:
            assert structures["active"][ulid] == int(fields["lease_expire_ms"])
        assert 0 <= attempts <= max_attempts, fields
        if state in (JobState.QUEUED, JobState.SCHEDULED):  # a job cancelled while active may be on its last
            assert attempts < max_attempts, fields
        if state == JobState.SCHEDULED:
            assert structures["scheduled"][ulid] == int(fields["due_ms"])
        if state in FINISHED:
            assert structures[state][ulid] == int(fields["finish_ms"])


def _check_against_model(
    m: Model, structures: dict[str, dict[str, float]], jobs: dict[str, dict[str, str]]
) -> None:
    for priority in Priority:
        assert list(structures[f"ready:{priority.name.lower()}"]) == list(m.ready[priority]), priority
    assert structures["scheduled"] == {j.ulid: j.due_ms for j in m.live(JobState.SCHEDULED)}
    assert structures["active"] == {j.ulid: j.deadline_ms for j in m.live(JobState.ACTIVE)}
    for state in FINISHED:
        assert structures[state] == {j.ulid: j.finish_ms for j in m.live(state)}, state
    assert jobs.keys() == {j.ulid for j in m.jobs.values() if not j.deleted}
    for ulid, fields in jobs.items():
        job = m.jobs[ulid]
        errors = len(_decode_errors(fields.get("errors", "")))
        assert (fields["state"], int(fields["attempts"]), fields.get("token", ""), errors) == (
            job.state,
            job.attempts,
            job.token,
            job.errors,
        ), ulid


def _decode_errors(raw: str) -> list[object]:
    return [] if raw in ("", "{}") else list(json.loads(raw))


async def _check(redis: Redis, store: Store, m: Model) -> None:
    keys = store.keys(m.queue)
    structures = await _raw_structures(redis, keys)
    jobs = await raw_jobs(redis, keys, list(m.jobs))
    _check_self_consistency(structures, jobs)
    _check_against_model(m, structures, jobs)
    (counts,) = await store.stats([m.queue])
    sizes = {name: len(members) for name, members in structures.items()}
    assert (
        counts.queued,
        counts.scheduled,
        counts.active,
        counts.completed,
        counts.dead,
        counts.cancelled,
    ) == (
        sizes["ready:high"] + sizes["ready:normal"] + sizes["ready:low"],
        sizes["scheduled"],
        sizes["active"],
        sizes["completed"],
        sizes["dead"],
        sizes["cancelled"],
    )
    assert counts.oldest_queued_age_ms >= 0


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    # The explain phase traces every line while shrinking: minutes instead of seconds here.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=15, max_size=30))
async def test_random_transitions_keep_the_store_consistent_with_its_state_machine(
    redis: Redis, key_prefix: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, steps: list[Step]
) -> None:
    # Replaying a failing list of steps must take the same path, or Hypothesis cannot shrink it:
    # fix the two random inputs the store draws (ulids order ties, the jitter sets due times).
    monkeypatch.setattr("jobqueue_server.store.redis_store.new_ulid", _next_ulid)
    config = StoreConfig(
        key_prefix=key_prefix,
        idempotency_window_ms=IDEMPOTENCY_WINDOW_MS,
        retention_ms=RETENTION_MS,
        default_lease_ms=DEFAULT_LEASE_MS,
        max_errors_kept=MAX_ERRORS_KEPT,
    )
    store = Store(redis, config, clock=clock)
    model = Model(queue=f"prop{next(_queue_numbers)}", now=clock.ms)
    run = Run(store, clock, model)

    for number, step in enumerate(steps):
        try:
            await run.step(step)
            await _check(redis, store, model)
        except AssertionError as exc:
            raise AssertionError(f"after step {number} {step}: {exc}") from exc

    keys = store.keys(model.queue)
    stored = [{f.decode() for f in await redis.hkeys(key)} for key in keys.hashes]
    live = {j.ulid for j in model.jobs.values() if not j.deleted}
    assert stored[0] == stored[1] == live, "every job has a record and wire bytes, and no other does"
    assert stored[2] | stored[3] <= live, "no error history or result outlives its job"
