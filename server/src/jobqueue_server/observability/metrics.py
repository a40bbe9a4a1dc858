"""Prometheus metrics of one server process (docs/monitoring.md), on their own registry.

What the process does (jobs enqueued, leased, settled; RPCs; open streams) is counted where it
happens; what Redis holds (jobs by queue and state, the oldest queued job's age) is read by a
background task into a cache (observability/queue_gauges.py), so a scrape never waits on Redis
and costs the same with hundreds of queues. Names and units follow Prometheus conventions:
`_total` counters, `_seconds` histograms, a `jobqueue_` prefix.

NO_METRICS is what a server without `--metrics-port` gets: the same calls, doing
nothing, so the hot paths need no checks of their own.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from jobqueue_server.ids import queue_of
from jobqueue_server.store import EnqueueOutcome, FailOutcome, JobState, Lease, Settle

# Handler and wait times run from milliseconds (an email) to hours (a report).
_TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def _queue(job_id: str) -> str:
    """The queue of a job, by the name producers use (a partition's jobs count for its queue)."""
    return queue_of(job_id.rpartition(":")[0])


class JobMetrics:
    """The process's counters, histograms and gauges, and the calls that feed them."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        if registry is None:
            return
        jobs = "jobqueue_jobs"
        self._enqueued = Counter(
            f"{jobs}_enqueued", "Jobs enqueued (new, not duplicates).", ["queue"], registry=registry
        )
        self._leased = Counter(
            f"{jobs}_leased", "Deliveries of jobs to workers.", ["queue"], registry=registry
        )
        self._completed = Counter(f"{jobs}_completed", "Jobs acked.", ["queue"], registry=registry)
        self._failed = Counter(
            f"{jobs}_failed", "Failed attempts reported by workers.", ["queue"], registry=registry
        )
        self._retried = Counter(
            f"{jobs}_retried", "Failed attempts scheduled for another try.", ["queue"], registry=registry
        )
        self._dead = Counter(
            f"{jobs}_dead",
            "Jobs that ended DEAD: a failed or lost last attempt.",
            ["queue"],
            registry=registry,
        )
        self._redriven = Counter(
            f"{jobs}_redriven", "Dead or cancelled jobs sent back by Retry.", ["queue"], registry=registry
        )
        self._cancelled = Counter(
            f"{jobs}_cancelled", "Jobs cancelled by Cancel.", ["queue"], registry=registry
        )
        self._expired = Counter(
            "jobqueue_lease_expirations",
            "Leases that ran out and were taken back by the reaper.",
            ["queue"],
            registry=registry,
        )
        self._processing = Histogram(
            "jobqueue_job_processing_seconds",
            "How long handlers ran, as workers report with their acks and fails.",
            ["queue", "outcome"],
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        self._wait = Histogram(
            "jobqueue_job_queue_wait_seconds",
            "How long jobs waited ready before a worker leased them.",
            ["queue"],
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        # Every per-queue counter starts at 0 for a queue when the queue is first seen: a
        # counter born at 1 would show no increase() (the dead-jobs alert would miss it).
        self._per_queue = (
            self._enqueued,
            self._leased,
            self._completed,
            self._failed,
            self._retried,
            self._dead,
            self._redriven,
            self._cancelled,
            self._expired,
        )
        self._seen: set[str] = set()
        self.rpc_started = Counter(
            "jobqueue_rpc_requests",
            "RPCs handled, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_seconds = Histogram(
            "jobqueue_rpc_duration_seconds",
            "Time to answer unary RPCs, by method.",
            ["method"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        return self.registry is not None

    def gauges(
        self, streams: Callable[[], int], held: Callable[[], int], redis_up: Callable[[], bool]
    ) -> None:
        """Gauges read when scraped: open Lease streams, jobs they hold, whether Redis answers."""
        if self.registry is None:
            return
        Gauge("jobqueue_lease_streams", "Open Lease streams.", registry=self.registry).set_function(streams)
        Gauge(
            "jobqueue_jobs_in_flight",
            "Jobs leased on this server's streams, not yet settled.",
            registry=self.registry,
        ).set_function(held)
        Gauge(
            "jobqueue_redis_up", "1 while Redis answers this server, else 0.", registry=self.registry
        ).set_function(lambda: float(redis_up()))

    def _see(self, queue: str) -> None:
        if queue not in self._seen:
            self._seen.add(queue)
            for counter in self._per_queue:
                counter.labels(queue)

    def enqueued(self, outcomes: Iterable[EnqueueOutcome]) -> None:
        if self.registry is None:
            return
        for queue, count in Tally(_queue(o.job_id) for o in outcomes if not o.duplicate).items():
            self._see(queue)
            self._enqueued.labels(queue).inc(count)

    def leased(self, lease: Lease) -> None:
        """One lease call's jobs (all of one queue)."""
        if self.registry is None or not lease.jobs:
            return
        queue = _queue(lease.jobs[0].job_id)
        self._see(queue)
        self._leased.labels(queue).inc(len(lease.jobs))
        wait = self._wait.labels(queue)
        for job in lease.jobs:
            wait.observe(max(0, lease.start_ms - job.due_ms) / 1000)

    def acked(self, items: Sequence[Settle], outcomes: Sequence[object]) -> None:
        if self.registry is None:
            return
        done = [item for item, outcome in zip(items, outcomes, strict=True) if outcome is None]
        for queue, count in Tally(_queue(item.job_id) for item in done).items():
            self._see(queue)
            self._completed.labels(queue).inc(count)
        self._observe(done, "completed")

    def failed(self, items: Sequence[Settle], outcomes: Sequence[object]) -> None:
        if self.registry is None:
            return
        done = [(item, o) for item, o in zip(items, outcomes, strict=True) if isinstance(o, FailOutcome)]
        for item, outcome in done:
            queue = _queue(item.job_id)
            self._see(queue)
            self._failed.labels(queue).inc()
            (self._dead if outcome.state == JobState.DEAD else self._retried).labels(queue).inc()
        self._observe([item for item, _ in done], "failed")

    def _observe(self, items: Sequence[Settle], outcome: str) -> None:
        for item in items:
            if item.handler_ms is not None:
                self._processing.labels(_queue(item.job_id), outcome).observe(item.handler_ms / 1000)

    def cancelled(self, job_id: str) -> None:
        if self.registry is not None:
            self._see(_queue(job_id))
            self._cancelled.labels(_queue(job_id)).inc()

    def redriven(self, job_id: str) -> None:
        if self.registry is not None:
            self._see(_queue(job_id))
            self._redriven.labels(_queue(job_id)).inc()

    def leases_expired(self, queue: str, requeued: int, dead: int) -> None:
        """Leases the reaper took back: requeued, or dead when no attempt was left."""
        if self.registry is None or not (requeued or dead):
            return
        queue = queue_of(queue)  # `queue` is where the leases were: maybe a partition
        self._see(queue)
        self._expired.labels(queue).inc(requeued + dead)
        if dead:
            self._dead.labels(queue).inc(dead)


#: What a server without --metrics-port gets.
NO_METRICS = JobMetrics(None)
