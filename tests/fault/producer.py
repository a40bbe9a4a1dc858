"""The producer: a paced stream of EnqueueBatch calls, retried until the server says yes.

Every job carries an idempotency key (`<run>-<n>`), so a batch whose answer was lost (a
server killed mid-call, a cut connection) can be sent again without enqueueing twice: the
server answers with the first job's id. A job counts as *acknowledged* once a response
named its id; the map key -> id is the checker's ground truth. A key that ever comes back
with two different ids is an idempotency violation and is reported.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jobqueue import AsyncClient, InvalidArgument, JobQueueError, JobSpec
from tests.fault.fault_worker import QUEUE

logger = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
GIVE_UP_S = 120.0


@dataclass(frozen=True)
class ProducerPlan:
    run_id: str
    jobs: int
    duration_s: float
    batch: int = 100
    max_attempts: int = 20
    lease_s: float = 2.0
    max_sleep_ms: int = 20


@dataclass
class ProducerResult:
    #: idempotency key -> job id, for every job a response acknowledged.
    acknowledged: dict[str, str] = field(default_factory=dict)
    #: Which error made a batch go again, by code (UNAVAILABLE, DEADLINE_EXCEEDED, ...).
    retries: Counter[str] = field(default_factory=Counter)
    idempotency_violations: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def payloads(plan: ProducerPlan, rng: random.Random) -> list[JobSpec]:
    """The jobs, drawn from the seeded RNG: the same seed gives the same work."""
    return [
        JobSpec(
            queue=QUEUE,
            payload={"n": n, "sleep_ms": rng.randint(0, plan.max_sleep_ms)},
            idempotency_key=f"{plan.run_id}-{n}",
            max_attempts=plan.max_attempts,
            lease_duration=plan.lease_s,
        )
        for n in range(plan.jobs)
    ]


class Producer:
    def __init__(self, target: str, plan: ProducerPlan, rng: random.Random) -> None:
        self.target = target
        self.plan = plan
        self.specs = payloads(plan, rng)
        self.result = ProducerResult()

    async def run(self) -> ProducerResult:
        """Sends every batch at its time on a steady schedule over `duration_s`."""
        self.result.started = time.time()
        batches = [self.specs[i : i + self.plan.batch] for i in range(0, len(self.specs), self.plan.batch)]
        interval = self.plan.duration_s / max(1, len(batches))
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with AsyncClient(self.target, timeout=CALL_TIMEOUT_S) as client:
            for n, batch in enumerate(batches):
                # A backlog after an outage is sent at once: producers do not wait politely.
                await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
                await self._send(client, batch)
        self.result.finished = time.time()
        return self.result

    async def _send(self, client: AsyncClient, batch: list[JobSpec]) -> None:
        delay = RETRY_FIRST_S
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                results = await client.enqueue_many(batch)
            except InvalidArgument:
                raise  # a harness bug: retrying would not help
            except JobQueueError as error:
                self.result.retries[error.code.name] += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            self._record(batch, [r.job_id for r in results])
            return

    def _record(self, batch: list[JobSpec], job_ids: list[str]) -> None:
        for spec, job_id in zip(batch, job_ids, strict=True):
            key = spec.get("idempotency_key")
            assert key is not None
            known = self.result.acknowledged.setdefault(key, job_id)
            if known != job_id:
                self.result.idempotency_violations.append(f"{key}: {known} then {job_id}")


def summary(result: ProducerResult) -> dict[str, Any]:
    return {
        "acknowledged": len(result.acknowledged),
        "retries": dict(result.retries),
        "idempotency_violations": result.idempotency_violations[:10],
        "seconds": round(result.finished - result.started, 1),
    }
