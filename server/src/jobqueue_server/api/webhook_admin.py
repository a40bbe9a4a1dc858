"""CreateWebhook, ListWebhooks and DeleteWebhook: validation and the messages (docs/monitoring.md,
"Failure alerts"). The deliveries themselves are alerts/dispatcher.py's."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.alerts.delivery import DeliveryFailed, checked_url, vetted_addresses
from jobqueue_server.api import validation
from jobqueue_server.errors import FieldViolation, WebhookLimitReached, WebhookNotFound
from jobqueue_server.ids import new_ulid
from jobqueue_server.store.webhooks import WebhookStore

MAX_WEBHOOKS = 100
MAX_URL_CHARS = 2048
MIN_AGE_MS, MAX_AGE_MS = 1_000, 7 * 86_400_000


class WebhookAdmin:
    def __init__(self, webhooks: WebhookStore, now_ms: Callable[[], Awaitable[int]]) -> None:
        self._webhooks = webhooks
        self._now_ms = now_ms

    async def create(self, wanted: svc.Webhook) -> svc.CreateWebhookResponse:
        webhook = await self._checked(wanted)
        if await self._webhooks.count() >= MAX_WEBHOOKS:
            raise WebhookLimitReached(f"{MAX_WEBHOOKS} webhooks exist: delete one first")
        now = await self._now_ms()
        webhook.id = new_ulid(now)
        webhook.create_time.FromMilliseconds(now)
        secret = secrets.token_urlsafe(32)
        await self._webhooks.put(webhook.id, webhook.SerializeToString(), secret)
        return svc.CreateWebhookResponse(webhook=webhook, secret=secret)

    async def put_declared(self, webhook_id: str, wanted: svc.Webhook, secret: str) -> None:
        """Stores a webhook of the webhooks file under its own id and secret, checked as create
        does; its create_time stays that of its first start, and its delivery cursors are kept."""
        webhook = await self._checked(wanted)
        stored = {w.id: w for w in (await self.list()).webhooks}
        if webhook_id not in stored and len(stored) >= MAX_WEBHOOKS:
            raise WebhookLimitReached(f"{MAX_WEBHOOKS} webhooks exist: delete one first")
        webhook.id = webhook_id
        if webhook_id in stored:
            webhook.create_time.CopyFrom(stored[webhook_id].create_time)
        else:
            webhook.create_time.FromMilliseconds(await self._now_ms())
        await self._webhooks.put(webhook_id, webhook.SerializeToString(), secret)

    async def list(self) -> svc.ListWebhooksResponse:
        return svc.ListWebhooksResponse(
            webhooks=[svc.Webhook.FromString(stored.definition) for stored in await self._webhooks.all()]
        )

    async def delete(self, webhook_id: str) -> None:
        if not webhook_id:
            raise FieldViolation("id", "is required")
        if not await self._webhooks.delete(webhook_id):
            raise WebhookNotFound(f"no webhook has the id {webhook_id!r}")

    @staticmethod
    async def _checked(wanted: svc.Webhook) -> svc.Webhook:
        """The webhook to store, every field checked; the URL's host must resolve to public
        addresses now (and is checked again at every delivery) unless private ones are allowed."""
        if len(wanted.url) > MAX_URL_CHARS:
            raise FieldViolation("webhook.url", f"must be at most {MAX_URL_CHARS} characters")
        try:
            url = checked_url(wanted.url)
        except ValueError as exc:
            raise FieldViolation("webhook.url", str(exc)) from None
        try:
            await vetted_addresses(url, wanted.allow_private_network)
        except DeliveryFailed as exc:
            hint = (
                ""
                if wanted.allow_private_network
                else " (set allow_private_network for an internal endpoint)"
            )
            raise FieldViolation("webhook.url", f"{exc}{hint}") from None
        if wanted.queue:
            validation.queue_name(wanted.queue, "webhook.queue")
        if wanted.HasField("oldest_job_age"):
            age = validation.duration_ms(wanted.oldest_job_age, "webhook.oldest_job_age", maximum=MAX_AGE_MS)
            if age < MIN_AGE_MS:
                raise FieldViolation("webhook.oldest_job_age", "must be at least 1 s")
        if wanted.dead_jobs < 0:
            raise FieldViolation("webhook.dead_jobs", "must be 0 (no alert) or more")
        webhook = svc.Webhook()
        webhook.CopyFrom(wanted)
        webhook.ClearField("id")
        webhook.ClearField("create_time")
        return webhook
