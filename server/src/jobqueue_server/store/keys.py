"""Every Redis key and channel name, built in one place.

All keys of a queue share the hash tag ``{<queue>}``, so each script touches one hash slot
and the same scripts run on Redis Cluster. Queue names never contain braces.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue under a key prefix."""

    ready_high: str
    ready_normal: str
    ready_low: str
    scheduled: str
    active: str
    completed: str
    dead: str
    cancelled: str
    #: Per-queue hashes keyed by ulid (docs/state-machine.md): each job's record, its wire
    #: bytes, its error history and its result.
    jobs: str
    wire: str
    errors: str
    result: str
    #: Hashes keyed by ulid of what only some jobs have: the latest progress their handler
    #: reported (`percent|ms|message`), their log (`ms|line` lines), and their time limits
    #: (`timeout ms|start deadline ms`, either empty).
    progress: str
    logs: str
    deadlines: str
    #: Queued and scheduled jobs with a start deadline, by it (the maintenance pass cancels them).
    expiring: str
    #: Unique key -> the ulid of the job that took it last (it holds it while pending or active).
    unique: str
    #: The queue's limits (SetQueueLimits: rate, burst, max_active) and its rate's token bucket.
    limits: str
    bucket: str
    #: Dependencies (docs/dependencies.md). WAITING jobs by enqueue ms; those of them whose
    #: parents may not all know of them yet (the enqueue's attach step did not finish), by
    #: enqueue ms; the ulids of this queue's jobs some WAITING job waits on; and the
    #: "<ulid>|<state>" of those that ended and whose waiting jobs were not told yet.
    waiting: str
    attaching: str
    dependents: str
    settled: str
    #: Prefixes of per-job keys: `parents:<ulid>` (hash: each parent id the WAITING job still
    #: waits for -> 1, and "" -> its DependencyFailure), `children:<ulid>` (set: the ids of the
    #: jobs waiting on this one).
    parents_prefix: str
    children_prefix: str
    #: Held by the server resolving this queue's settled jobs (redis-py's Lock).
    resolving: str
    #: Groups (EnqueueRequest.group_key): each grouped job's group, by ulid, and how many grouped
    #: jobs are ready; the other group keys are named after `group_of` (prelude's group_keys).
    group_of: str
    grouped_ready: str
    #: The ring of groups by turn, the groups a limit holds, and the prefix of each group's
    #: sorted set of ready jobs (the scripts name them after `group_of`, as here).
    group_ring: str
    group_blocked: str
    group_ready_prefix: str
    #: The per-job hashes of the previous layout (format 1), read only by the migration.
    job_prefix: str
    idem_prefix: str
    signal: str
    #: Set while the queue is paused (PauseQueue): the lease script leases nothing from it.
    paused: str

    @classmethod
    def of(cls, prefix: str, queue: str) -> QueueKeys:
        base = f"{prefix}:{{{queue}}}"
        return cls(
            ready_high=f"{base}:ready:high",
            ready_normal=f"{base}:ready:normal",
            ready_low=f"{base}:ready:low",
            scheduled=f"{base}:scheduled",
            active=f"{base}:active",
            completed=f"{base}:completed",
            dead=f"{base}:dead",
            cancelled=f"{base}:cancelled",
            jobs=f"{base}:jobs",
            wire=f"{base}:wire",
            errors=f"{base}:errors",
            result=f"{base}:result",
            progress=f"{base}:progress",
            logs=f"{base}:logs",
            deadlines=f"{base}:deadlines",
            expiring=f"{base}:expiring",
            unique=f"{base}:unique",
            limits=f"{base}:limits",
            bucket=f"{base}:bucket",
            waiting=f"{base}:waiting",
            attaching=f"{base}:attaching",
            dependents=f"{base}:dependents",
            settled=f"{base}:settled",
            parents_prefix=f"{base}:parents:",
            children_prefix=f"{base}:children:",
            resolving=f"{base}:resolving",
            group_of=f"{base}:group_of",
            grouped_ready=f"{base}:gqueued",
            group_ring=f"{base}:groups",
            group_blocked=f"{base}:gblocked",
            group_ready_prefix=f"{base}:gready:",
            job_prefix=f"{base}:job:",
            idem_prefix=f"{base}:idem:",
            signal=f"{base}:signal",
            paused=f"{base}:paused",
        )

    @property
    def ready(self) -> tuple[str, str, str]:
        """The ready lists, highest priority first."""
        return (self.ready_high, self.ready_normal, self.ready_low)

    @property
    def hashes(self) -> tuple[str, str, str, str]:
        """The hashes holding a job's entries: records, wires, errors, results."""
        return (self.jobs, self.wire, self.errors, self.result)

    @property
    def extras(self) -> tuple[str, str, str]:
        """The hashes of what only some jobs have: progress, logs, time limits."""
        return (self.progress, self.logs, self.deadlines)

    def job(self, ulid: str) -> str:
        """A job's hash in the previous layout (format 1)."""
        return self.job_prefix + ulid


def stops_channel(prefix: str) -> str:
    """Where a script that ends an active job's lease (a cancel, a timeout) says so: every
    server listens, and the one whose stream holds the job tells its worker to stop."""
    return f"{prefix}:stops"


def watch_channel(prefix: str) -> str:
    """Where servers say which jobs their WatchJob streams follow, and which they changed."""
    return f"{prefix}:watch"


def dependencies_channel(prefix: str) -> str:
    """Where a script that ended a job other jobs wait on names its queue: every server's
    resolver (store/dependencies.py) then tells the waiting jobs."""
    return f"{prefix}:deps"


def queues_set(prefix: str) -> str:
    """The set of every queue ever enqueued to (for Stats and the maintenance loop)."""
    return f"{prefix}:queues"


def format_key(prefix: str) -> str:
    """The layout the jobs under `prefix` are stored in, set once a migration is done."""
    return f"{prefix}:format"


@dataclass(frozen=True, slots=True)
class ScheduleKeys:
    """The keys of the schedules, in one hash slot (`~` is in no queue name, so no queue's
    keys share the tag)."""

    defs: str
    state: str
    due: str

    @classmethod
    def of(cls, prefix: str) -> ScheduleKeys:
        base = f"{prefix}:{{~schedules}}"
        return cls(defs=f"{base}:defs", state=f"{base}:state", due=f"{base}:due")

    def all(self) -> list[str]:
        return [self.defs, self.state, self.due]
