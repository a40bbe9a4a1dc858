"""Per-queue gauges read from Redis: jobs by state and the age of the oldest queued job.

A background task reads every registered queue's counts (the Stats script, pipelined, a page of
1,000 queues per burst) every `interval_s` into a snapshot; scrapes read the snapshot. So a scrape
costs nothing in Redis, and hundreds of queues cost one short burst every interval, whatever the
number of scrapers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobqueue_server.errors import StoreFull, StoreUnavailable
from jobqueue_server.store import QueueCounts, Store

logger = logging.getLogger(__name__)

PAGE = 1_000
_STATES = ("queued", "scheduled", "active", "completed", "dead", "cancelled", "waiting")


class QueueGauges(Collector):
    def __init__(self, store: Store, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._snapshot: list[QueueCounts] = []

    async def refresh(self) -> None:
        """Reads every registered queue's counts now."""
        queues = await self._store.queue_names()
        counts: list[QueueCounts] = []
        for start in range(0, len(queues), PAGE):
            counts += await self._store.stats(queues[start : start + PAGE])
        self._snapshot = counts

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (StoreUnavailable, StoreFull) as exc:  # the last snapshot stays; redis_up says why
                logger.warning("queue gauges not refreshed: %s", exc)
            await asyncio.sleep(self._interval_s)

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "jobqueue_queue_jobs", "Jobs of each queue by state (read from Redis).", labels=["queue", "state"]
        )
        age = GaugeMetricFamily(
            "jobqueue_queue_oldest_job_age_seconds",
            "Age of each queue's oldest ready job (0 when none is ready).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily("jobqueue_queue_paused", "1 while a queue is paused.", labels=["queue"])
        for counts in self._snapshot:
            for state in _STATES:
                jobs.add_metric([counts.queue, state], getattr(counts, state))
            age.add_metric([counts.queue], max(0, counts.oldest_queued_age_ms) / 1000)
            paused.add_metric([counts.queue], float(counts.paused))
        yield from (jobs, age, paused)
