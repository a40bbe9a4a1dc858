"""Delivers webhook events, apart from the job path: every server runs this loop, and one at a
time per webhook delivers (a lock in Redis), in order.

- `job.dead`: each pass reads, per queue, the latest death (one pipelined read for all queues);
  a queue with deaths after the webhook's cursor has its dead jobs delivered one by one, the
  cursor moved after each 2xx. A failure leaves the cursor: the webhook waits, with backoff
  (2 s doubling to 5 minutes), and its events resume in order when the endpoint answers again.
  A server dying between a POST and the cursor's move makes that delivery happen twice: the
  `Jobqueue-Delivery` id (the job's id and death time) is the same, for receivers to skip it.
- `queue.oldest_job_age`, `queue.dead_jobs`: a webhook with a threshold compares each queue's
  figures (the Stats script) with it each pass and delivers a change of side (`firing`, then
  `resolved`); the new state is stored once delivered, so a change is delivered at least once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from google.protobuf import json_format
from redis.exceptions import LockError

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.alerts.delivery import DeliveryFailed, deliver, http_client
from jobqueue_server.api.job_wire import job_message
from jobqueue_server.errors import JobNotFound, StoreFull, StoreUnavailable
from jobqueue_server.ids import make_job_id, queue_of
from jobqueue_server.store import QueueCounts, Store
from jobqueue_server.store.webhooks import Cursor, WebhookStore

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 2.0, 300.0
_LOCK_S = 60.0
#: How often thresholds are compared (each check runs the Stats script on their queues).
THRESHOLD_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class Hook:
    """A webhook and its signing secret."""

    webhook: svc.Webhook
    secret: str


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class WebhookDispatcher:
    def __init__(self, store: Store, webhooks: WebhookStore, interval_s: float) -> None:
        self._store = store
        self._webhooks = webhooks
        self._interval_s = interval_s
        self._retry_at: dict[str, float] = {}  # webhook id -> loop time of its next try
        self._failures: dict[str, int] = {}
        self._thresholds_at = 0.0  # loop time of the next threshold check
        self.deliveries = 0  # delivered so far, and tries that failed (tests wait on them)
        self.failures = 0

    async def run(self) -> None:
        async with http_client() as client:
            while True:
                try:
                    await self.pass_once(client)
                except (StoreUnavailable, StoreFull) as exc:
                    logger.warning("webhook pass failed: %s", exc)
                except Exception:  # the loop must outlive any one pass
                    logger.exception("webhook pass failed")
                await asyncio.sleep(self._interval_s)

    async def pass_once(self, client: aiohttp.ClientSession) -> None:
        hooks = [Hook(svc.Webhook.FromString(s.definition), s.secret) for s in await self._webhooks.all()]
        if not hooks:
            return
        now = asyncio.get_running_loop().time()
        deaths = await self._webhooks.latest_deaths(await self._store.known_queues())  # by partition
        counts = await self._threshold_counts(hooks, await self._store.queue_names(), now)
        for hook in hooks:
            if self._retry_at.get(hook.webhook.id, 0) > now:
                continue
            await self._serve(client, hook, deaths, counts)

    async def _threshold_counts(
        self, hooks: Sequence[Hook], queues: list[str], now: float
    ) -> list[QueueCounts]:
        """The counts of the queues some webhook has thresholds on, read at most every
        THRESHOLD_EVERY_S (the Stats script per queue; empty in the passes between)."""
        wanted: set[str] = set()
        for hook in hooks:
            if hook.webhook.HasField("oldest_job_age") or hook.webhook.dead_jobs:
                wanted |= {hook.webhook.queue} if hook.webhook.queue else set(queues)
        if not wanted or now < self._thresholds_at:
            return []
        self._thresholds_at = now + THRESHOLD_EVERY_S
        return await self._store.stats(sorted(wanted & set(queues)))

    async def _serve(
        self,
        client: aiohttp.ClientSession,
        hook: Hook,
        deaths: dict[str, int],
        counts: Sequence[QueueCounts],
    ) -> None:
        webhook_id = hook.webhook.id
        lock = self._store.redis.lock(
            self._webhooks.lock_prefix + webhook_id, timeout=_LOCK_S, blocking=False
        )
        if not await lock.acquire():
            return  # another server delivers this webhook's events now
        try:
            for queue, latest in deaths.items():
                if not hook.webhook.queue or hook.webhook.queue == queue_of(queue):
                    await self._deliver_deaths(client, hook, queue, latest)
            for queue_counts in counts:
                if not hook.webhook.queue or hook.webhook.queue == queue_counts.queue:
                    await self._deliver_thresholds(client, hook, queue_counts)
            self._failures.pop(webhook_id, None)
            self._retry_at.pop(webhook_id, None)
        except DeliveryFailed as exc:
            self.failures += 1
            failures = self._failures[webhook_id] = self._failures.get(webhook_id, 0) + 1
            backoff = min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (failures - 1))
            self._retry_at[webhook_id] = asyncio.get_running_loop().time() + backoff
            logger.warning("webhook %s: delivery failed (%s); next try in %.0f s", webhook_id, exc, backoff)
        finally:
            try:
                await lock.release()
            except LockError:
                logger.warning("webhook %s: a pass took longer than %.0f s", webhook_id, _LOCK_S)

    async def _deliver_deaths(
        self, client: aiohttp.ClientSession, hook: Hook, queue: str, latest: int
    ) -> None:
        webhook_id = hook.webhook.id
        cursor = await self._webhooks.cursor(webhook_id, queue)
        if cursor is None:  # the webhook hears of the deaths after its creation only
            cursor = Cursor(hook.webhook.create_time.ToMilliseconds())
            await self._webhooks.move_cursor(webhook_id, queue, cursor)
        if latest < cursor.finish_ms:
            return
        for ulid, finish_ms in await self._webhooks.dead_after(queue, cursor):
            job_id = make_job_id(queue, ulid)
            try:
                job = json_format.MessageToDict(job_message(await self._store.get(job_id)))
            except JobNotFound:  # trimmed meanwhile
                job = None
            if job is not None:
                payload = {"event": "job.dead", "time": _iso(finish_ms), "queue": queue_of(queue), "job": job}
                await self._post(client, hook, "job.dead", f"{job_id}:dead:{finish_ms}", payload)
            await self._webhooks.move_cursor(webhook_id, queue, Cursor(finish_ms, ulid))

    async def _deliver_thresholds(
        self, client: aiohttp.ClientSession, hook: Hook, counts: QueueCounts
    ) -> None:
        webhook = hook.webhook
        checks: list[tuple[str, bool, dict[str, Any]]] = []
        if webhook.HasField("oldest_job_age"):
            limit = webhook.oldest_job_age.ToMilliseconds()
            age = max(0, counts.oldest_queued_age_ms)
            figures = {"oldest_job_age_seconds": age / 1000, "threshold_seconds": limit / 1000}
            checks.append(("queue.oldest_job_age", age > limit, figures))
        if webhook.dead_jobs:
            checks.append(
                (
                    "queue.dead_jobs",
                    counts.dead >= webhook.dead_jobs,
                    {"dead_jobs": counts.dead, "threshold": webhook.dead_jobs},
                )
            )
        for event, over, figures in checks:
            changes, on = await self._webhooks.alert_state(webhook.id, counts.queue, event)
            if over == on:
                continue
            status = "firing" if over else "resolved"
            payload = {
                "event": event,
                "status": status,
                "time": _iso(int(datetime.now(UTC).timestamp() * 1000)),
                "queue": counts.queue,
                **figures,
            }
            await self._post(
                client, hook, event, f"{webhook.id}:{counts.queue}:{event}:{changes + 1}", payload
            )
            await self._webhooks.set_alert_state(webhook.id, counts.queue, event, changes + 1, over)

    async def _post(
        self,
        client: aiohttp.ClientSession,
        hook: Hook,
        event: str,
        delivery_id: str,
        payload: dict[str, Any],
    ) -> None:
        payload = {"delivery_id": delivery_id, "webhook_id": hook.webhook.id, **payload}
        await deliver(
            client,
            hook.webhook.url,
            hook.webhook.allow_private_network,
            hook.secret,
            event,
            delivery_id,
            payload,
        )
        self.deliveries += 1
