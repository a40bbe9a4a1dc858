"""Every token's record, kept in memory and refreshed from Redis, so that checking a call's
token costs no Redis call; and the watch that ends a stream whose token is revoked or expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from jobqueue_server.auth.policy import Principal, Role
from jobqueue_server.auth.tokens import secret_matches, split_token
from jobqueue_server.errors import JobQueueError, StoreUnavailable, TokenExpired, TokenInvalid, TokenMissing
from jobqueue_server.store.tokens import TokenRecord, TokenStore

logger = logging.getLogger(__name__)

#: How often a server asks Redis whether tokens changed: the delay of a revocation at most.
REFRESH_INTERVAL_S = 1.0
BEARER = "bearer "


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TokenRegistry:
    """The tokens of one key prefix, as of at most REFRESH_INTERVAL_S ago."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        self._records: dict[str, TokenRecord] = {}
        # One Principal per token, kept while its record is, so its scope cache lasts across calls.
        self._principals: dict[str, Principal] = {}
        self._version = -1
        self._reload: asyncio.Task[None] | None = None
        self._reload_started = 0.0
        self._watches: dict[str, set[asyncio.Future[JobQueueError]]] = {}

    async def run(self) -> None:
        """Refreshes forever (a background task of the server)."""
        while True:
            with contextlib.suppress(StoreUnavailable):  # keep the last known tokens meanwhile
                await self.refresh()
            await asyncio.sleep(REFRESH_INTERVAL_S)

    async def refresh(self) -> None:
        """Reloads the records when their version moved. One reload runs at a time, and a
        caller joins one that started after it asked, so a flood of unknown tokens costs one
        HGET per round trip, not one per call."""
        asked = time.monotonic()
        while True:
            if self._reload is None or self._reload.done():
                self._reload_started = time.monotonic()
                self._reload = asyncio.create_task(self._reload_if_changed())
            started, reload = self._reload_started, self._reload
            await asyncio.shield(reload)
            if started >= asked:
                return

    async def _reload_if_changed(self) -> None:
        if await self._store.version() == self._version:
            return
        self._version, records = await self._store.load()
        self._records = {record.token_id: record for record in records}
        self._principals = {
            r.token_id: Principal(r.token_id, r.name, Role(r.role), r.queues, r.expires_ms) for r in records
        }
        for token_id in [t for t in self._watches if t not in self._records]:
            self._end_watches(token_id, TokenInvalid("the token was revoked"))

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `authorization` metadata value, or the error refusing it."""
        if not authorization:
            raise TokenMissing("this server requires a token: send `authorization: Bearer <token>` metadata")
        if authorization[: len(BEARER)].lower() != BEARER:
            raise TokenInvalid("the authorization metadata must be `Bearer <token>`")
        parts = split_token(authorization[len(BEARER) :].strip())
        if parts is None:
            raise TokenInvalid("the token is malformed")
        token_id, secret = parts
        record = self._records.get(token_id)
        if record is None:
            await self.refresh()  # made since the last refresh, perhaps on another server?
            record = self._records.get(token_id)
        if record is None or not secret_matches(secret, record.secret_sha256):
            raise TokenInvalid("the token is unknown or revoked")
        if record.expires_ms is not None and record.expires_ms <= _now_ms():
            raise TokenExpired("the token has expired")
        return self._principals[token_id]

    def watch(self, principal: Principal) -> asyncio.Future[JobQueueError]:
        """A future that resolves with the error to end a stream with, once the principal's
        token is revoked or expires. Cancel it when the stream ends."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobQueueError] = loop.create_future()
        watches = self._watches.setdefault(principal.token_id, set())
        watches.add(future)
        timer = None
        if principal.expires_ms is not None:
            delay = max(0.0, (principal.expires_ms - _now_ms()) / 1000)
            timer = loop.call_later(delay, _resolve, future, TokenExpired("the token has expired"))

        def forget(_: asyncio.Future[JobQueueError]) -> None:
            if timer is not None:
                timer.cancel()
            watches.discard(future)
            if not watches and self._watches.get(principal.token_id) is watches:
                del self._watches[principal.token_id]

        future.add_done_callback(forget)
        return future

    def _end_watches(self, token_id: str, error: JobQueueError) -> None:
        for future in list(self._watches.get(token_id, ())):
            _resolve(future, error)


def _resolve(future: asyncio.Future[JobQueueError], error: JobQueueError) -> None:
    if not future.done():
        future.set_result(error)
