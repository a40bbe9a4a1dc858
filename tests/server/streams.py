"""A bare Lease stream for server tests: write requests, read jobs and confirmations."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2, struct_pb2

from jobqueue.v1 import job_queue_service_pb2 as svc

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

WAIT_S = 10.0


class LeaseStream:
    """One open Lease stream, with the jobs and confirmations it has received so far."""

    def __init__(self, stub: Stub) -> None:
        self.call: Any = stub.Lease()
        self.jobs: list[svc.LeasedJob] = []
        self.confirmations: list[svc.Confirmation] = []
        self.stops: list[svc.JobStop] = []
        self.messages = 0

    async def subscribe(
        self, *queues: str, max_in_flight: int = 1, lease_ms: int = 0, worker_id: str = "test-worker"
    ) -> LeaseStream:
        sub = svc.Subscribe(queues=list(queues), max_in_flight=max_in_flight, worker_id=worker_id)
        if lease_ms:
            sub.lease_duration.CopyFrom(
                duration_pb2.Duration(seconds=lease_ms // 1000, nanos=lease_ms % 1000 * 1_000_000)
            )
        await self.call.write(svc.LeaseRequest(subscribe=sub))
        return self

    async def _read_one(self) -> None:
        response = await self.call.read()
        assert isinstance(response, svc.LeaseResponse), f"stream ended: {await self.call.code()}"
        self.messages += 1
        self.jobs += response.jobs
        self.confirmations += response.confirmations
        self.stops += response.stops

    async def wait_jobs(self, count: int, timeout_s: float = WAIT_S) -> list[svc.LeasedJob]:
        """Reads until `count` jobs in all have arrived; returns them."""
        async with asyncio.timeout(timeout_s):
            while len(self.jobs) < count:
                await self._read_one()
        return self.jobs[:count]

    async def wait_stops(self, count: int, timeout_s: float = WAIT_S) -> list[svc.JobStop]:
        async with asyncio.timeout(timeout_s):
            while len(self.stops) < count:
                await self._read_one()
        return self.stops[:count]

    async def wait_confirmations(self, count: int, timeout_s: float = WAIT_S) -> list[svc.Confirmation]:
        async with asyncio.timeout(timeout_s):
            while len(self.confirmations) < count:
                await self._read_one()
        return self.confirmations[:count]

    async def ack(self, *jobs: svc.LeasedJob, result: dict[str, Any] | None = None) -> None:
        acks = []
        for job in jobs:
            ack = svc.AckRequest(job_id=job.job.id, lease_token=job.lease_token)
            if result is not None:
                value = struct_pb2.Struct()
                value.update(result)
                ack.result.CopyFrom(value)
            acks.append(ack)
        await self.call.write(svc.LeaseRequest(acks=acks))

    async def fail(self, job: svc.LeasedJob, error: str, *, non_retryable: bool = False) -> None:
        fail = svc.FailRequest(
            job_id=job.job.id, lease_token=job.lease_token, error=error, non_retryable=non_retryable
        )
        await self.call.write(svc.LeaseRequest(fails=[fail]))

    async def close(self) -> None:
        """Half-closes the stream and waits for the server to end it."""
        await self.call.done_writing()
        async with asyncio.timeout(WAIT_S):
            while (response := await self.call.read()) is not grpc.aio.EOF:
                self.jobs += response.jobs
                self.confirmations += response.confirmations


def payload(**fields: Any) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(fields)
    return value


async def wait_for_state(
    stub: Stub, job_id: str, state: int, timeout_s: float = WAIT_S
) -> svc.GetStatusResponse:
    """Polls GetStatus until the job reaches `state` (a condition, not a timing assertion)."""
    async with asyncio.timeout(timeout_s):
        while True:
            response = await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))
            if response.job.state == state:
                return response
            await asyncio.sleep(0.02)
