"""Dropped Lease streams leave nothing behind: the probe saw every dropped stream log asyncio's
"Task was destroyed but it is pending!" (a leaked Queue.get() future). This guards against its
return: streams dropped in each way a worker can drop them, then collected, log nothing of it."""

from __future__ import annotations

import asyncio
import gc
import logging

import grpc
import pytest

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.runtime.app import App


async def _open_stream(app: App) -> tuple[grpc.aio.Channel, grpc.aio.StreamStreamCall]:  # type: ignore[type-arg]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    call = svc_grpc.JobQueueServiceStub(channel).Lease()
    await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=["dropped"], max_in_flight=2)))
    await call.read()
    return channel, call


async def test_dropped_lease_streams_leave_no_pending_task(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    for way in ("cancel", "close channel", "half-close"):
        for _ in range(5):
            channel, call = await _open_stream(app)
            if way == "cancel":
                call.cancel()
            elif way == "half-close":
                await call.done_writing()
                while await call.read() is not grpc.aio.EOF:
                    pass
            await channel.close()
    async with asyncio.timeout(10):
        while app.servicer.open_streams:
            await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0)
    assert "Task was destroyed" not in caplog.text
