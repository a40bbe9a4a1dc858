"""Store: every job state change as one Lua script call on the job's queue."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from jobqueue_server.clock import SYSTEM_CLOCK, Clock
from jobqueue_server.errors import (
    DurabilityUnavailable,
    FsyncNotConfirmed,
    InternalError,
    JobNotFound,
    JobQueueError,
    QueueLimitReached,
)
from jobqueue_server.ids import make_job_id, new_ulid, partition_name, queue_of, split_job_id
from jobqueue_server.store import cluster
from jobqueue_server.store.cluster import script_calls
from jobqueue_server.store.codes import Code, error_for
from jobqueue_server.store.decode import lease_of
from jobqueue_server.store.dependencies import Dependencies
from jobqueue_server.store.due import Due, due_work, with_ready_jobs
from jobqueue_server.store.durability import FsyncGate
from jobqueue_server.store.guard import MAPPED, group_by_queue, redis_errors
from jobqueue_server.store.keys import QueueKeys, queues_set, stops_channel
from jobqueue_server.store.layout import spec
from jobqueue_server.store.listing import count_in_state, list_page, read_jobs
from jobqueue_server.store.lua_header import LuaHeader
from jobqueue_server.store.migrate import BuildWire, Migration, migrate
from jobqueue_server.store.partitions import Partitions, merge_counts, split_limits
from jobqueue_server.store.records import (
    Backoff,
    Durability,
    EnqueueOutcome,
    ExtendOutcome,
    FailOutcome,
    JobRecord,
    JobState,
    Lease,
    NewJob,
    Progress,
    QueueCounts,
    QueueLimits,
    Settle,
)
from jobqueue_server.store.replication import ReplicaGate
from jobqueue_server.store.schedules import ScheduleStore
from jobqueue_server.store.scripts import Scripts
from jobqueue_server.store.webhooks import WebhookStore

DAY_MS = 86_400_000
# Every store call names its queue's keys: each queue's are built once.
_keys = functools.lru_cache(maxsize=4096)(QueueKeys.of)
# Most jobs share a few backoff policies: each is written out once.
_backoff_text = functools.lru_cache(maxsize=1024)(Backoff.encode)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    key_prefix: str = "jq"
    idempotency_window_ms: int = DAY_MS
    retention_ms: int = DAY_MS
    default_lease_ms: int = 30_000
    max_errors_kept: int = 100
    #: Log lines kept per job (its handlers' ctx.log), the oldest dropped first.
    max_log_lines: int = 100
    sweep_batch: int = 1_000
    command_timeout_ms: int = 3_000
    #: How long a DURABILITY_FSYNCED write waits for Redis to confirm it on disk (WAITAOF).
    #: Under appendfsync everysec, Redis and Valkey 8 may take up to about a second to confirm.
    fsync_timeout_ms: int = 2_000
    #: DURABILITY_REPLICATED: how many replicas must confirm a write, and how long they get.
    replicas_to_wait: int = 1
    replication_timeout_ms: int = 2_000
    #: How many queues may exist: each costs a maintenance look a few reads.
    max_queues: int = 10_000
    #: A server registers a queue again on its first enqueue after this long, so a queue
    #: dropped from the registry while empty (forget_queue) is registered again when used.
    registration_ttl_ms: int = 60_000


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    outcomes: list[EnqueueOutcome]
    #: The earliest due time among jobs this call scheduled, or None.
    earliest_due_ms: int | None
    #: The earliest due time of each queue this call scheduled jobs on.
    due_ms_by_queue: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one maintenance pass over a queue did, and when the queue next needs one."""

    promoted: int
    requeued: int
    dead: int
    trimmed: int
    next_due_ms: int | None
    #: True when a script stopped at its batch size: another pass is due at once.
    hit_batch_limit: bool = False


Outcome = JobQueueError | None


class Store:
    """Job storage on one Redis (or Valkey) server. Built once per process and injected."""

    def __init__(self, redis: Redis, config: StoreConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.redis = redis
        self.config = config
        self.clock = clock
        self._scripts = Scripts.register(redis, script_calls(redis, config.command_timeout_ms / 1000))
        # Queues this server registered, and when (its clock's ms): see registration_ttl_ms.
        self._known_queues: dict[str, int] = {}
        self._fsync = FsyncGate(redis, config.fsync_timeout_ms)
        self._replicas = ReplicaGate(
            redis, config.key_prefix, config.replicas_to_wait, config.replication_timeout_ms
        )
        #: The wake-up message of this process's enqueues: its signal listener skips them (the
        #: servicer woke its own streams already, ready_wakeup.py); other servers act on them.
        self.signal_origin = f"ready:{secrets.token_hex(8)}"
        self.schedules = ScheduleStore(redis, self._scripts, config.key_prefix, self._guard)
        self.webhooks = WebhookStore(redis, config.key_prefix, self.keys, self._guard)
        self.dependencies = Dependencies(
            redis, self._scripts, self.keys, self._now, config.max_errors_kept, self._guard
        )
        self.partitions = Partitions(redis, config.key_prefix, self._scripts.partitions_grow)

    def _guard(self, durability: Durability = Durability.APPLIED) -> AbstractAsyncContextManager[None]:
        """Bounds redis-py calls in time and maps their failures. A fsynced or replicated write
        may also wait for its confirmation, which has its own bound."""
        extra_ms = {
            Durability.FSYNCED: self.config.fsync_timeout_ms,
            Durability.REPLICATED: self.config.replication_timeout_ms,
        }.get(durability, 0)
        return redis_errors((self.config.command_timeout_ms + extra_ms) / 1000)

    def _scripts_guard(
        self, durability: Durability = Durability.APPLIED
    ) -> AbstractAsyncContextManager[None]:
        """For script calls: on the pipeline (which bounds its calls itself) only failures need
        mapping; a fsynced or replicated write runs on redis-py connections of its own."""
        return MAPPED if durability is Durability.APPLIED else self._guard(durability)

    @asynccontextmanager
    async def _writer(
        self, durability: Durability, queues: Iterable[str]
    ) -> AsyncIterator[Callable[[str], Redis | None]]:
        """The client to write each queue's jobs with: None for the scripts' shared pipeline,
        or a connection whose writes are confirmed when the body ends without an error: on
        disk (fsynced), by the replicas of each primary written to (replicated)."""
        if durability is Durability.FSYNCED:
            async with self._fsync.connection() as connection:
                yield lambda queue: connection
        elif durability is Durability.REPLICATED:
            async with self._replicas.connections(queues) as connection_for:
                yield connection_for
        else:
            yield lambda queue: None

    def keys(self, queue: str) -> QueueKeys:
        return _keys(self.config.key_prefix, queue)

    def _now(self) -> str:
        """The script's clock argument: empty means Redis's own TIME."""
        return str(self.clock.now_ms()) if self.clock.drives_scripts else ""

    async def load_scripts(self) -> None:
        """Loads every script now, so a syntax error or a missing Redis shows at start."""
        async with self._guard():
            for script in self._scripts.all():
                await self.redis.script_load(script.script)

    async def migrate(self, build_wire: BuildWire) -> Migration:
        """Moves jobs stored by the previous layout into this one (store/migrate.py); a server
        runs it before it serves. `build_wire` makes the wire bytes of jobs stored without."""
        timeout_s = self.config.command_timeout_ms / 1000
        return await migrate(self.redis, self._scripts.migrate, self.config.key_prefix, build_wire, timeout_s)

    async def now_ms(self) -> int:
        """The scripts' clock: Redis's TIME, unless the injected clock drives the scripts."""
        if self.clock.drives_scripts:
            return self.clock.now_ms()
        async with self._guard():
            seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def ping(self) -> None:
        async with self._guard():
            await self.redis.ping()

    async def replication_problem(self) -> str | None:
        """Checks now why DURABILITY_REPLICATED cannot be provided, or None when it can."""
        async with self._guard():
            return await self._replicas.deployment_problem()

    async def fsync_problem(self) -> str | None:
        """Checks now why DURABILITY_FSYNCED cannot be provided, or None when it can."""
        async with self._guard():
            return await self._fsync.check()

    async def eviction_policy(self) -> str:
        async with self._guard():
            config = await self.redis.config_get("maxmemory-policy")
        value = config.get(b"maxmemory-policy") or config.get("maxmemory-policy") or b""
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- producers -------------------------------------------------------------------------

    async def enqueue(
        self,
        jobs: Sequence[NewJob],
        durability: Durability = Durability.APPLIED,
        sent: Callable[[str], object] | None = None,
    ) -> EnqueueResult:
        """Adds jobs, one script call per queue; outcomes come in the order of `jobs`.

        Returns once the jobs are applied, or (FSYNCED) on disk: one WAITAOF covers them all.
        `sent(queue)` runs (APPLIED only) once a queue's script call is written on the shared
        pipeline: a lease sent after that runs after it in Redis, so it can be sent before the
        reply comes back. The wake-up it publishes carries `signal_origin`, which this
        server's own listener skips: the caller wakes this server's streams (ready_wakeup.py).
        """
        groups: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            groups.setdefault(job.queue, []).append(index)
        outcomes: list[EnqueueOutcome | None] = [None] * len(jobs)
        due_by_queue: dict[str, int] = {}
        async with self._scripts_guard(durability), self._writer(durability, groups) as client_for:
            # After the writer: a refused fsynced write must leave no trace, not even here.
            await self._remember_queues(groups)
            for queue, indexes in groups.items():
                client = client_for(queue)
                on_sent = None if sent is None or client is not None else functools.partial(sent, queue)
                reply = await self._enqueue_group(client, queue, [jobs[i] for i in indexes], on_sent)
                for slot, index in enumerate(indexes):
                    ulid = reply[slot * 2].decode()
                    outcomes[index] = EnqueueOutcome(make_job_id(queue, ulid), bool(reply[slot * 2 + 1]))
                due = int(reply[-1])
                if due >= 0:
                    due_by_queue[queue] = due
        done = [o for o in outcomes if o is not None]
        waiting = [
            (outcome.job_id, job.depends_on)
            for job, outcome in zip(jobs, done, strict=True)
            if job.depends_on and not outcome.duplicate
        ]
        if waiting:
            for queue, due in (await self.dependencies.attach(waiting)).items():
                due_by_queue[queue] = min(due, due_by_queue.get(queue, due))
        earliest = min(due_by_queue.values(), default=None)
        return EnqueueResult(done, earliest, due_by_queue)

    async def _remember_queues(self, queues: dict[str, Any]) -> None:
        """Registers the queues this server has not seen, refusing (QueueLimitReached, before
        anything is written) those that would grow the registry past `max_queues`. Checked, then
        added: servers creating queues at the same moment may pass the bound by those queues."""
        now = self.clock.now_ms()
        ttl = self.config.registration_ttl_ms
        new = [q for q in queues if self._known_queues.get(q, -ttl) + ttl <= now]
        if not new:
            return
        key = queues_set(self.config.key_prefix)
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.scard(key)
                pipe.smismember(key, new)
                size, present = await pipe.execute()
            missing = [q for q, there in zip(new, present, strict=True) if not there]
            if missing and size + len(missing) > self.config.max_queues:
                raise QueueLimitReached(
                    f"{size:,} queues exist and max_queues is {self.config.max_queues:,}: "
                    f"{missing[0]!r} would be one more"
                )
            if missing:
                await self.redis.sadd(key, *missing)
        self._known_queues.update(dict.fromkeys(new, now))

    async def _enqueue_group(
        self, client: Redis | None, queue: str, jobs: list[NewJob], sent: Callable[[], object] | None
    ) -> list[Any]:
        k = self.keys(queue)
        args: list[Any] = [
            self._now(),
            k.idem_prefix,
            self.config.idempotency_window_ms,
            k.signal,
            len(jobs),
        ]
        backoff, backoff_text = None, ""
        for job in jobs:
            if job.backoff is not backoff:  # most jobs of a call share one policy object
                backoff, backoff_text = job.backoff, _backoff_text(job.backoff)
            args += [
                job.ulid or new_ulid(self.clock.now_ms()),
                spec(job.priority, job.lease_ms, job.max_attempts, backoff_text),
                -1 if job.due_ms is None else job.due_ms,
                job.delay_ms,
                job.wire,
                job.idempotency_key,
                job.limits,
                job.unique_key,
                job.dependencies,
                job.group_key,
            ]
        args.append(self.signal_origin)
        keys = [
            *k.ready,
            k.scheduled,
            k.jobs,
            k.wire,
            k.deadlines,
            k.expiring,
            k.unique,
            k.waiting,
            k.attaching,
            k.group_of,
        ]
        return list(await self._scripts.enqueue(keys=keys, args=args, client=client, sent=sent))

    # -- reads -----------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord:
        parts = split_job_id(job_id)
        if parts is None:
            raise JobNotFound(f"job {job_id} not found")
        async with self._guard():
            (record,) = await read_jobs(self.redis, parts[0], self.keys(parts[0]), [parts[1]])
        if record is None:
            raise JobNotFound(f"job {job_id} not found")
        return record

    async def list_jobs(
        self, queue: str, state: JobState, offset: int, limit: int
    ) -> tuple[list[tuple[int, JobRecord]], int]:
        """Jobs of one queue in one state from position `offset`, each with its position, and
        how many are in that state (see listing). A partitioned queue's positions run through
        its partitions one after the other, partition 0 first."""
        found: list[tuple[int, JobRecord]] = []
        total = 0
        async with self._guard():
            for name in self.partitions.names(queue):
                if len(found) == limit:
                    total += await count_in_state(self.redis, self.keys(name), state)
                    continue
                start = max(0, offset - total)
                page, size = await list_page(
                    self.redis, name, self.keys(name), state, start, limit - len(found)
                )
                found += [(total + at, record) for at, record in page]
                total += size
        return found, total

    async def known_queues(self) -> list[str]:
        """Every registered queue. Queues this server registered within registration_ttl_ms
        that the registry lacks are registered again: Redis lost its data (a restart without
        persistence, a failover to an empty replica), or another server dropped the queue as
        empty just as this one enqueued to it; enqueues skip the registration of queues this
        server registered lately, so a scheduled job on one would otherwise never be promoted."""
        key = queues_set(self.config.key_prefix)
        fresh_since = self.clock.now_ms() - self.config.registration_ttl_ms
        async with self._guard():
            members = {m.decode() for m in await self.redis.smembers(key)}
            lost = {q for q, at in self._known_queues.items() if at > fresh_since} - members
            if lost:
                await self.redis.sadd(key, *lost)
        if lost:
            logger.warning("registered %d queues again: the store had lost them", len(lost))
        return sorted(members | lost)

    async def queue_names(self) -> list[str]:
        """Every queue by the name producers use: the registered ones, their partitions folded
        into them, and the partitioned ones (created, maybe with no job yet)."""
        stored = await self.known_queues()
        return sorted({queue_of(name) for name in stored} | self.partitions.partitioned().keys())

    async def forget_queue(self, queue: str) -> bool:
        """Drops a queue that holds no job from the registry; False (and nothing dropped) when
        it holds one. A job enqueued meanwhile puts it back: checked again after the removal."""
        key, jobs = queues_set(self.config.key_prefix), self.keys(queue).jobs
        async with self._guard():
            if await self.redis.hlen(jobs):
                return False
            await self.redis.srem(key, queue)
            if await self.redis.hlen(jobs):
                await self.redis.sadd(key, queue)
                return False
        self._known_queues.pop(queue, None)
        return True

    async def stats(self, queues: Sequence[str]) -> list[QueueCounts]:
        """Each queue's counts, a partitioned queue's summed over its partitions; the script
        calls go out together on the pipeline (a page of 1,000 queues is one burst of writes,
        not 1,000 round trips)."""
        names = [self.partitions.names(queue) for queue in queues]
        counted = iter(await self._stats([name for group in names for name in group]))
        return [
            merge_counts(queue, [next(counted) for _ in group])
            for queue, group in zip(queues, names, strict=True)
        ]

    async def _stats(self, queues: Sequence[str]) -> list[QueueCounts]:
        now = self._now()

        async def count(queue: str) -> QueueCounts:
            k = self.keys(queue)
            keys = [
                *k.ready,
                k.scheduled,
                k.active,
                k.completed,
                k.dead,
                k.cancelled,
                k.jobs,
                k.paused,
                k.limits,
                k.waiting,
                k.grouped_ready,
            ]
            (
                *counts,
                rate,
                burst,
                max_active,
                group_rate,
                group_burst,
                group_max,
                waiting,
            ) = await self._scripts.stats(keys=keys, args=[now])
            queued, scheduled, active, completed, dead, cancelled, age, paused = (int(v) for v in counts)
            limits = None
            if rate or burst or max_active or group_rate or group_burst or group_max:
                limits = QueueLimits(
                    float(rate or 0),
                    int(burst or 0),
                    int(max_active or 0),
                    float(group_rate or 0),
                    int(group_burst or 0),
                    int(group_max or 0),
                )
            return QueueCounts(
                queue,
                queued,
                scheduled,
                active,
                completed,
                dead,
                cancelled,
                age,
                bool(paused),
                limits,
                int(waiting),
            )

        async with self._scripts_guard():
            return list(await asyncio.gather(*(count(queue) for queue in queues)))

    # -- operators -------------------------------------------------------------------------

    async def set_limits(self, queue: str, limits: QueueLimits) -> None:
        """Sets (or, all zero, removes) a queue's limits; the lease script applies them from
        its next call on, on every server. A new rate starts with a full bucket. Each
        partition of a partitioned queue enforces its share (partitions.py)."""
        names = self.partitions.names(queue)
        await self._remember_queues({queue: None})  # a limited queue shows in Stats
        for name, share in zip(names, split_limits(limits, len(names)), strict=True):
            await self._set_limits(name, share)

    async def _set_limits(self, queue: str, limits: QueueLimits) -> None:
        k = self.keys(queue)
        async with self._guard(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.limits, k.bucket)
            if not limits.empty:
                pipe.hset(
                    k.limits,
                    mapping={
                        "rate": repr(limits.rate_per_second),
                        "burst": limits.burst,
                        "max_active": limits.max_active,
                        "group_rate": repr(limits.group_rate_per_second),
                        "group_burst": limits.group_burst,
                        "group_max_active": limits.group_max_active,
                    },
                )
            await pipe.execute()
            if not limits.empty:  # looser limits may let waiting streams lease
                await cluster.wake(self.redis, k.signal, "ready")

    async def pause(self, queue: str) -> bool:
        """Stops delivery from `queue` on every server (the lease script checks the flag);
        enqueues still work and leased jobs finish. Returns whether it was running."""
        await self._remember_queues({queue: None})  # a paused queue shows in Stats
        async with self._guard():
            before = [
                await self.redis.set(self.keys(name).paused, "1", get=True)
                for name in self.partitions.names(queue)
            ]
        return not before[0]

    async def resume(self, queue: str) -> bool:
        """Lets `queue`'s jobs be leased again and wakes the other servers' streams waiting on
        it (its wake-up carries `signal_origin`, as an enqueue's does: the caller wakes this
        server's own). Returns whether it was paused."""
        removed = []
        async with self._guard():
            for name in self.partitions.names(queue):
                k = self.keys(name)
                removed.append(await self.redis.delete(k.paused))
                # The caller wakes this server's own streams (not in a pipeline: see cluster.publish).
                await cluster.wake(self.redis, k.signal, self.signal_origin)
        return bool(removed[0])

    async def create_queue(self, queue: str, partitions: int) -> tuple[int, int, bool]:
        """Registers `queue` with at least `partitions` partitions; returns its count before
        (1 for a queue never split, or never seen), its count now, and whether the queue is
        new. New partitions take the queue's pause and its share of its limits."""
        async with self._guard():
            fresh = not await self.redis.sismember(queues_set(self.config.key_prefix), queue)
        self._known_queues.pop(queue, None)
        await self._remember_queues({queue: None})  # a created queue shows in Stats
        async with self._scripts_guard():
            before, now = await self.partitions.grow(queue, partitions)
        if now > before:
            names = self.partitions.names(queue)
            async with self._guard():
                if await self.redis.exists(self.keys(queue).paused):
                    for name in names[before:]:
                        await self.redis.set(self.keys(name).paused, "1")
            old = await self._stats([partition_name(queue, i) for i in range(before)])
            limits = merge_counts(queue, old).limits
            if limits is not None:
                await self.set_limits(queue, limits)
        return before, now, fresh

    # -- workers ---------------------------------------------------------------------------

    def lease(self, queue: str, count: int, lease_ms: int, worker_id: str) -> Awaitable[Lease]:
        """Leases up to `count` ready jobs of `queue`, highest priority first.

        The script call is written before this returns (when the connection is up): called as
        an enqueue's script goes out, it goes out right behind it (lease_session.py)."""
        k = self.keys(queue)
        token_base = secrets.token_hex(8)
        lease_ms = lease_ms or self.config.default_lease_ms
        args: list[Any] = [self._now(), count, lease_ms, token_base, worker_id]
        reply = self._scripts.lease.now(
            keys=[
                *k.ready,
                k.active,
                k.jobs,
                k.wire,
                k.errors,
                k.paused,
                k.deadlines,
                k.expiring,
                k.limits,
                k.bucket,
                k.group_of,
            ],
            args=args,
        )
        return self._leased(queue, token_base, worker_id, reply)

    async def _leased(self, queue: str, token_base: str, worker_id: str, reply: Awaitable[Any]) -> Lease:
        async with MAPPED:
            return lease_of(queue, token_base, worker_id, await reply)

    async def ack(self, items: Sequence[Settle]) -> list[Outcome]:
        """Completes leased jobs; one outcome per item, None for success.

        Items are confirmed at their own durability, one pass per level; a fsynced pass that
        is refused or not confirmed answers its items with that error, not the others.
        """
        outcomes: list[Outcome] = [None] * len(items)
        for level in Durability:
            indexes = [i for i, item in enumerate(items) if item.durability is level]
            if indexes:
                answers = await self._ack_at(level, [items[i] for i in indexes])
                for index, answer in zip(indexes, answers, strict=True):
                    outcomes[index] = answer
        return outcomes

    async def _ack_at(self, durability: Durability, items: Sequence[Settle]) -> list[Outcome]:
        async def run(client: Redis | None, queue: str, group: list[tuple[int, str]]) -> list[Any]:
            k = self.keys(queue)
            args: list[Any] = [self._now(), len(group)]
            for index, ulid in group:
                args += [ulid, items[index].token, items[index].result]
            keys = [k.active, k.completed, k.jobs, k.result, k.limits, k.dependents, k.group_of]
            return list(await self._scripts.ack(keys=keys, args=args, client=client))

        try:
            replies = await self._per_queue(items, run, width=1, durability=durability)
        except (DurabilityUnavailable, FsyncNotConfirmed) as error:
            return [error] * len(items)
        header = self._scripts.ack.header
        return [
            error_for(header, int(r[0]), item.job_id) if r else JobNotFound(f"job {item.job_id} not found")
            for item, r in zip(items, replies, strict=True)
        ]

    async def fail(self, items: Sequence[Settle]) -> list[FailOutcome | JobQueueError]:
        """Records failed attempts: each job backs off to SCHEDULED or is DEAD."""

        async def run(client: Redis | None, queue: str, group: list[tuple[int, str]]) -> list[Any]:
            k = self.keys(queue)
            args: list[Any] = [self._now(), self.config.max_errors_kept, len(group)]
            for index, ulid in group:
                item = items[index]
                args += [
                    ulid,
                    item.token,
                    item.error,
                    int(item.non_retryable),
                    item.retry_delay_ms,
                    self.clock.jitter(),
                ]
            keys = [k.active, k.scheduled, k.dead, k.jobs, k.errors, k.limits, k.dependents, k.group_of]
            return list(await self._scripts.fail(keys=keys, args=args, client=client))

        replies = await self._per_queue(items, run, width=2)
        return [self._fail_outcome(item.job_id, r) for item, r in zip(items, replies, strict=True)]

    def _fail_outcome(self, job_id: str, reply: list[Any] | None) -> FailOutcome | JobQueueError:
        if not reply:
            return JobNotFound(f"job {job_id} not found")
        code, due = int(reply[0]), int(reply[1])
        error = error_for(self._scripts.fail.header, code, job_id)
        if error is not None:
            return error
        return FailOutcome(JobState.DEAD, 0) if code == Code.DEAD else FailOutcome(JobState.SCHEDULED, due)

    async def extend(
        self, items: Sequence[Settle], default_lease_ms: int = 0
    ) -> list[ExtendOutcome | JobQueueError]:
        """Moves lease deadlines to now + lease_ms; an item without one gets the job's own
        lease length, else `default_lease_ms` (a stream's), else the configured default."""
        fallback = default_lease_ms or self.config.default_lease_ms

        async def run(client: Redis | None, queue: str, group: list[tuple[int, str]]) -> list[Any]:
            k = self.keys(queue)
            args: list[Any] = [self._now(), fallback, len(group)]
            for index, ulid in group:
                args += [ulid, items[index].token, items[index].lease_ms]
            return list(
                await self._scripts.extend(keys=[k.active, k.jobs, k.deadlines], args=args, client=client)
            )

        replies = await self._per_queue(items, run, width=2)
        outcomes: list[ExtendOutcome | JobQueueError] = []
        header = self._scripts.extend.header
        for item, r in zip(items, replies, strict=True):
            error = (
                error_for(header, int(r[0]), item.job_id)
                if r
                else JobNotFound(f"job {item.job_id} not found")
            )
            outcomes.append(error or ExtendOutcome(int(r[1]) if r else 0))
        return outcomes

    async def release(self, leases: Sequence[tuple[str, str]]) -> int:
        """Takes back leases (job id, token) held by a stream that ended. Returns how many."""
        groups, _ = group_by_queue([job_id for job_id, _ in leases])
        taken = 0
        async with self._scripts_guard():
            for queue, group in groups.items():
                k = self.keys(queue)
                args: list[Any] = [
                    self._now(),
                    k.signal,
                    self.config.max_errors_kept,
                    "released",
                    stops_channel(self.config.key_prefix),
                    queue,
                    len(group),
                ]
                for index, ulid in group:
                    args += [ulid, leases[index][1]]
                reply = await self._scripts.requeue(keys=self._requeue_keys(k), args=args)
                taken += int(reply[0]) + int(reply[1])
        return taken

    async def _per_queue(
        self,
        items: Sequence[Settle],
        run: Callable[[Redis | None, str, list[tuple[int, str]]], Any],
        width: int,
        durability: Durability = Durability.APPLIED,
    ) -> list[list[Any] | None]:
        """Runs `run` once per queue; splits each flat reply into `width` entries per item."""
        groups, _ = group_by_queue([item.job_id for item in items])
        replies: list[list[Any] | None] = [None] * len(items)
        if not groups:  # nothing to write, so nothing to confirm (or refuse)
            return replies
        async with self._scripts_guard(durability), self._writer(durability, groups) as client_for:
            for queue, group in groups.items():
                flat = await run(client_for(queue), queue, group)
                if len(flat) != width * len(group):
                    raise InternalError(f"a script answered {len(flat)} values for {len(group)} jobs")
                for slot, (index, _) in enumerate(group):
                    replies[index] = flat[slot * width : (slot + 1) * width]
        return replies

    # -- operators -------------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        """A pub/sub message (the watch channel's announcements)."""
        async with self._guard():
            await cluster.publish(self.redis, channel, message)

    async def progress(self, updates: Sequence[Progress]) -> None:
        """Records handlers' progress and log lines (one script call per queue); updates whose
        lease is no longer current are dropped by the script."""
        groups: dict[str, list[Progress]] = {}
        for update in updates:
            parts = split_job_id(update.job_id)
            if parts is not None:
                groups.setdefault(parts[0], []).append(update)
        async with self._scripts_guard():
            for queue, group in groups.items():
                k = self.keys(queue)
                args: list[Any] = [self._now(), self.config.max_log_lines, len(group)]
                for update in group:
                    percent = "" if update.percent is None else repr(float(update.percent))
                    args += [
                        update.job_id.rpartition(":")[2],
                        update.token,
                        percent,
                        update.message,
                        "\n".join(update.lines),
                    ]
                await self._scripts.progress(keys=[k.jobs, k.progress, k.logs], args=args)

    async def cancel(self, job_id: str) -> None:
        """Cancels a scheduled, queued or active job; an active one's stop is published on the
        stops channel (every server's listener hands it to the stream holding the job)."""
        queue, ulid = self._split(job_id)
        k = self.keys(queue)
        async with self._scripts_guard():
            code, state = await self._scripts.cancel(
                keys=[
                    k.scheduled,
                    *k.ready,
                    k.cancelled,
                    k.jobs,
                    k.active,
                    k.waiting,
                    k.dependents,
                    k.group_of,
                ],
                args=[self._now(), ulid, stops_channel(self.config.key_prefix), job_id],
            )
        self._raise_for(self._scripts.cancel.header, int(code), job_id, state)

    async def retry(self, job_id: str) -> None:
        queue, ulid = self._split(job_id)
        k = self.keys(queue)
        async with self._scripts_guard():
            code, state = await self._scripts.retry(
                keys=[k.dead, k.cancelled, *k.ready, k.jobs, k.result, k.group_of],
                args=[self._now(), k.signal, ulid],
            )
        self._raise_for(self._scripts.retry.header, int(code), job_id, state)

    @staticmethod
    def _requeue_keys(k: QueueKeys) -> list[str]:
        return [k.active, *k.ready, k.dead, k.jobs, k.errors, k.deadlines, k.dependents, k.group_of]

    @staticmethod
    def _split(job_id: str) -> tuple[str, str]:
        parts = split_job_id(job_id)
        if parts is None:
            raise JobNotFound(f"job {job_id} not found")
        return parts

    @staticmethod
    def _raise_for(script: LuaHeader, code: int, job_id: str, state: bytes) -> None:
        error = error_for(script, code, job_id, state.decode() if isinstance(state, bytes) else str(state))
        if error is not None:
            raise error

    # -- maintenance -----------------------------------------------------------------------

    async def due(self, queues: Sequence[str], now_ms: int, *, sizes: bool = False) -> dict[str, Due]:
        """Which of `queues` have maintenance due now, and when each next will (store/due.py);
        with `sizes`, which hold no job."""
        if not queues:
            return {}
        async with self._guard():
            return await due_work(
                self.redis, self.keys, queues, now_ms, self.config.retention_ms, sizes=sizes
            )

    async def ready_queues(self, queues: Sequence[str]) -> list[str]:
        """The queues among `queues` that hold ready jobs now."""
        if not queues:
            return []
        async with self._guard():
            return await with_ready_jobs(self.redis, self.keys, queues)

    async def sweep(self, queue: str) -> SweepResult:
        """Promotes due jobs, reaps expired leases and trims finished jobs of one queue."""
        k = self.keys(queue)
        now, cfg = self._now(), self.config
        async with self._scripts_guard():
            promoted, next_due = await self._scripts.promote(
                keys=[k.scheduled, *k.ready, k.jobs, k.group_of], args=[now, k.signal, cfg.sweep_batch]
            )
            requeued, dead, next_deadline = await self._scripts.requeue(
                keys=self._requeue_keys(k),
                args=[
                    now,
                    k.signal,
                    cfg.max_errors_kept,
                    "expired",
                    stops_channel(cfg.key_prefix),
                    queue,
                    cfg.sweep_batch,
                ],
            )
            expired, next_expiry = await self._scripts.expire(
                keys=[
                    k.expiring,
                    *k.ready,
                    k.scheduled,
                    k.cancelled,
                    k.jobs,
                    k.errors,
                    k.waiting,
                    k.dependents,
                    k.group_of,
                ],
                args=[now, cfg.max_errors_kept, cfg.sweep_batch],
            )
            trimmed = await self._scripts.trim(
                keys=[k.completed, k.dead, k.cancelled, *k.hashes, *k.extras, k.unique, k.group_of],
                args=[now, cfg.retention_ms, cfg.sweep_batch],
            )
        wakes = [int(t) for t in (next_due, next_deadline, next_expiry) if int(t) >= 0]
        full = (
            max(int(promoted), int(requeued) + int(dead), int(expired)) >= cfg.sweep_batch
            or int(trimmed) >= cfg.sweep_batch
        )
        return SweepResult(
            int(promoted),
            int(requeued),
            int(dead),
            int(trimmed),
            min(wakes, default=None),
            hit_batch_limit=full,
        )
