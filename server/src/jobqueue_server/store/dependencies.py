"""Job dependencies (docs/dependencies.md): WAITING jobs attached to their parents, and told
when a parent ends.

A waiting job and its parents may be in different queues, so in different hash slots: no one
script sees both sides. Each step is one script on one queue, and each can run again safely:

1. The enqueue script writes the job WAITING, with a `parents:<ulid>` hash of the parents it
   still waits for, and an `attaching` entry.
2. `attach` runs attach-2.lua on each parent's queue: a parent still pending or active keeps the
   child's id in its `children:<ulid>` set; one that already ended answers its state, and the
   child is told at once. Then the `attaching` entry goes.
3. When a parent ends, its finishing script leaves "<ulid>|<state>" in its queue's `settled`
   set and names the queue on `<prefix>:deps`. `resolve_settled` (run by every server on that
   message, one at a time per queue) tells each child with resolve-12.lua, which crosses the
   parent off the child's parents hash once, whoever tells it and however often.

A server that dies between two steps leaves an `attaching` or a `settled` entry behind: the
maintenance pass finds them (`pending_queues`) and the step runs again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from redis.asyncio import Redis
from redis.exceptions import LockError

from jobqueue_server.ids import make_job_id, split_job_id
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.scripts import Scripts

logger = logging.getLogger(__name__)

#: Pairs or triples per script call, and children read per page: a parent may have any number.
PAGE = 1_000
#: A waiting job still `attaching` this long after its enqueue lost its server mid-way.
STALE_ATTACH_MS = 30_000
#: Settled entries one resolution reads at a time.
_SETTLED_PAGE = 100
#: How long one server may hold a queue's resolution before another may take it over.
_LOCK_S = 60.0

#: A waiting job's id with the ids of the parents it waits for.
Waiting = tuple[str, Sequence[str]]


class Dependencies:
    """The steps above; the store builds one and injects what it needs."""

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        keys_of: Callable[[str], QueueKeys],
        now: Callable[[], str],
        max_errors_kept: int,
        guard: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys_of
        self._now = now
        self._max_errors_kept = max_errors_kept
        self._guard = guard

    async def missing(self, job_ids: Sequence[str]) -> list[str]:
        """The ids among `job_ids` that name no stored job (one round trip)."""
        parts = [split_job_id(job_id) for job_id in job_ids]
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            for part in parts:
                if part is not None:
                    pipe.hexists(self._keys(part[0]).jobs, part[1])
            found = iter(await pipe.execute())
        return [
            job_id for job_id, part in zip(job_ids, parts, strict=True) if part is None or not next(found)
        ]

    async def attach(self, waiting: Sequence[Waiting]) -> dict[str, int]:
        """Step 2 for jobs the enqueue script just wrote WAITING. Returns, for each queue where a
        job whose parents had all ended is now SCHEDULED, its earliest due time."""
        by_queue: dict[str, list[tuple[str, str]]] = {}
        for child, parents in waiting:
            for parent in parents:
                queue, ulid = _split(parent)
                by_queue.setdefault(queue, []).append((ulid, child))
        ended: list[tuple[str, str, str]] = []
        async with self._guard():
            for queue, pairs in by_queue.items():
                k = self._keys(queue)
                for start in range(0, len(pairs), PAGE):
                    page = pairs[start : start + PAGE]
                    args: list[str | int] = [len(page)]
                    for ulid, child in page:
                        args += [ulid, child]
                    states = await self._scripts.attach(keys=[k.jobs, k.dependents], args=args)
                    ended += [
                        (child, make_job_id(queue, ulid), state.decode())
                        for (ulid, child), state in zip(page, states, strict=True)
                        if state
                    ]
        due = await self.tell(ended)
        attached: dict[str, list[str]] = {}
        for child, _ in waiting:
            queue, ulid = _split(child)
            attached.setdefault(queue, []).append(ulid)
        async with self._guard():
            for queue, ulids in attached.items():
                await self._redis.zrem(self._keys(queue).attaching, *ulids)
        return due

    async def tell(self, news: Sequence[tuple[str, str, str]]) -> dict[str, int]:
        """Tells waiting jobs that a parent ended: (child id, parent id, parent's state)
        triples, one resolve-12.lua call per queue and page. Returns the earliest due time of
        each queue where a released job is SCHEDULED (its delay has not run out)."""
        by_queue: dict[str, list[tuple[str, str, str]]] = {}
        for child, parent, state in news:
            queue, ulid = _split(child)
            by_queue.setdefault(queue, []).append((ulid, parent, state))
        due: dict[str, int] = {}
        async with self._guard():
            for queue, triples in by_queue.items():
                k = self._keys(queue)
                keys = [
                    k.jobs,
                    k.waiting,
                    *k.ready,
                    k.scheduled,
                    k.dead,
                    k.cancelled,
                    k.errors,
                    k.dependents,
                    k.attaching,
                    k.group_of,
                ]
                for start in range(0, len(triples), PAGE):
                    page = triples[start : start + PAGE]
                    args: list[str | int] = [self._now(), k.signal, self._max_errors_kept, len(page)]
                    for triple in page:
                        args += triple
                    _, _, next_due = await self._scripts.resolve(keys=keys, args=args)
                    if int(next_due) >= 0:
                        _merge(due, {queue: int(next_due)})
        return due

    async def resolve_settled(self, queue: str) -> dict[str, int]:
        """Step 3 for every settled job of `queue` (nothing when another server holds the
        queue's resolution: it goes on until none is left). Returns what `tell` does."""
        k = self._keys(queue)
        lock = self._redis.lock(k.resolving, timeout=_LOCK_S, blocking=False)
        async with self._guard():
            if not await lock.acquire():
                return {}
        due: dict[str, int] = {}
        try:
            while entries := await self._some(k.settled, _SETTLED_PAGE):
                _merge(due, await self._resolve_page(queue, k, entries))
        finally:
            try:
                async with self._guard():
                    await lock.release()
            except LockError:  # held past its timeout: another server may have it now
                logger.warning("resolving queue %s took longer than %.0f s", queue, _LOCK_S)
        return due

    async def _resolve_page(self, queue: str, k: QueueKeys, entries: list[str]) -> dict[str, int]:
        """Tells up to PAGE children of each settled entry, all in one `tell` (a fan-in of many
        parents settling together is a few round trips, not a few per parent); an entry whose
        children were all told is released, one with more stays for the next page."""
        parsed = [entry.partition("|") for entry in entries]
        keys = [k.children_prefix + ulid for ulid, _, _ in parsed]
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.srandmember(key, PAGE)
            pages = [[child.decode() for child in page or []] for page in await pipe.execute()]
        due = await self.tell(
            [
                (child, make_job_id(queue, ulid), state)
                for (ulid, _, state), page in zip(parsed, pages, strict=True)
                for child in page
            ]
        )
        async with self._guard():
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, page in zip(keys, pages, strict=True):
                    if page:
                        pipe.srem(key, *page)
                await pipe.execute()
            await asyncio.gather(
                *(
                    self._scripts.release_dependent(keys=[key, k.dependents, k.settled], args=[ulid, entry])
                    for key, (ulid, _, _), entry, page in zip(keys, parsed, entries, pages, strict=True)
                    if len(page) < PAGE
                )
            )
        return due

    async def _some(self, key: str, count: int) -> list[str]:
        """Up to `count` members of the set at `key` (the caller removes those it handled)."""
        async with self._guard():
            values = await self._redis.srandmember(key, count)
        return [v.decode() for v in values or []]

    async def pending_queues(self, queues: Sequence[str], now_ms: int) -> tuple[list[str], list[str]]:
        """Among `queues`: those with settled jobs whose children were not all told, and those
        with waiting jobs stuck attaching (their enqueue's server died mid-way). One round trip."""
        if not queues:
            return [], []
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                k = self._keys(queue)
                pipe.scard(k.settled)
                pipe.zcount(k.attaching, "-inf", now_ms - STALE_ATTACH_MS)
            counts = await pipe.execute()
        settled = [q for i, q in enumerate(queues) if counts[2 * i]]
        attaching = [q for i, q in enumerate(queues) if counts[2 * i + 1]]
        return settled, attaching

    async def reattach(self, queue: str, now_ms: int) -> dict[str, int]:
        """Step 2 again for `queue`'s jobs stuck attaching. Returns what `attach` does."""
        k = self._keys(queue)
        async with self._guard():
            ulids = [
                u.decode()
                for u in await self._redis.zrangebyscore(
                    k.attaching, "-inf", now_ms - STALE_ATTACH_MS, start=0, num=PAGE
                )
            ]
            async with self._redis.pipeline(transaction=False) as pipe:
                for ulid in ulids:
                    pipe.hkeys(k.parents_prefix + ulid)
                parents = await pipe.execute()
        waiting: list[Waiting] = []
        for ulid, fields in zip(ulids, parents, strict=True):
            ids = [f.decode() for f in fields if f]
            waiting.append((make_job_id(queue, ulid), ids))
        return await self.attach(waiting)


def _merge(due: dict[str, int], more: dict[str, int]) -> None:
    """Keeps the earliest due time per queue."""
    for queue, at in more.items():
        due[queue] = min(at, due.get(queue, at))


def _split(job_id: str) -> tuple[str, str]:
    parts = split_job_id(job_id)
    if parts is None:  # ids come from the api layer, checked, or from the scripts
        raise ValueError(f"not a job id: {job_id!r}")
    return parts
