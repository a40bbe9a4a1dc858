"""The Prometheus endpoint (--metrics-port): real text, parsed with prometheus_client's parser,
after a real run. Jobs counted by what happened to them, processing and wait histograms, RPCs by
method and code, streams in flight, per-queue gauges read from Redis, lease expirations."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import duration_pb2
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(app: App) -> Samples:
    """Every sample of the endpoint, by name and labels."""

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    text = await asyncio.to_thread(fetch)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _seconds(s: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(s), nanos=round(s % 1 * 1e9))


async def test_a_run_shows_in_the_counters_histograms_and_gauges(metered: App, metered_stub: Stub) -> None:
    stub = metered_stub
    ids = [
        (await stub.Enqueue(svc.EnqueueRequest(queue="emails", idempotency_key=f"k{n}"))).job_id
        for n in range(3)
    ]
    await stub.Enqueue(svc.EnqueueRequest(queue="emails", idempotency_key="k0"))  # a duplicate
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Enqueue(svc.EnqueueRequest(queue="bad queue"))

    stream = await LeaseStream(stub).subscribe("emails", max_in_flight=10)
    leased = await stream.wait_jobs(3)
    during = await scrape(metered)
    by_id = {job.job.id: job for job in leased}
    acks = [
        svc.AckRequest(job_id=ids[0], lease_token=by_id[ids[0]].lease_token, handler_duration=_seconds(0.25)),
        svc.AckRequest(job_id=ids[1], lease_token=by_id[ids[1]].lease_token, handler_duration=_seconds(1.5)),
    ]
    fail = svc.FailRequest(
        job_id=ids[2],
        lease_token=by_id[ids[2]].lease_token,
        error="boom",
        non_retryable=True,
        handler_duration=_seconds(0.1),
    )
    await stream.call.write(svc.LeaseRequest(acks=acks, fails=[fail]))
    await stream.wait_confirmations(3)
    await stream.close()
    await stub.Retry(svc.RetryRequest(job_id=ids[2]))
    cancelled = (await stub.Enqueue(svc.EnqueueRequest(queue="emails"))).job_id
    await stub.Cancel(svc.CancelRequest(job_id=cancelled))

    # The gauges are read from Redis every 0.1 s: wait for a read after the last change (the cancel).
    after = await _scrape_until(
        metered, lambda s: value(s, "jobqueue_queue_jobs", queue="emails", state="cancelled") == 1
    )

    assert (value(during, "jobqueue_lease_streams"), value(during, "jobqueue_jobs_in_flight")) == (1, 3)
    assert (value(after, "jobqueue_lease_streams"), value(after, "jobqueue_jobs_in_flight")) == (0, 0)
    counted = {
        name: value(after, f"jobqueue_jobs_{name}_total", queue="emails")
        for name in ("enqueued", "leased", "completed", "failed", "dead", "retried", "redriven", "cancelled")
    }
    assert counted == {
        "enqueued": 4,  # not the duplicate
        "leased": 3,
        "completed": 2,
        "failed": 1,
        "dead": 1,
        "retried": 0,
        "redriven": 1,
        "cancelled": 1,
    }
    completed = {"queue": "emails", "outcome": "completed"}
    assert value(after, "jobqueue_job_processing_seconds_count", **completed) == 2
    assert value(after, "jobqueue_job_processing_seconds_sum", **completed) == pytest.approx(1.75)
    assert value(after, "jobqueue_job_processing_seconds_bucket", **completed, le="0.5") == 1
    assert value(after, "jobqueue_job_processing_seconds_count", queue="emails", outcome="failed") == 1
    assert value(after, "jobqueue_job_queue_wait_seconds_count", queue="emails") == 3
    assert value(after, "jobqueue_rpc_requests_total", method="Enqueue", code="OK") == 5
    assert value(after, "jobqueue_rpc_requests_total", method="Enqueue", code="INVALID_ARGUMENT") == 1
    assert value(after, "jobqueue_rpc_requests_total", method="Lease", code="OK") == 1
    assert value(after, "jobqueue_rpc_duration_seconds_count", method="Enqueue") == 6
    assert value(after, "jobqueue_redis_up") == 1
    for state, count in {"queued": 1, "completed": 2, "dead": 0, "cancelled": 1, "active": 0}.items():
        assert value(after, "jobqueue_queue_jobs", queue="emails", state=state) == count, state


async def test_a_lease_that_runs_out_counts_as_an_expiration(metered: App, metered_stub: Stub) -> None:
    await metered_stub.Enqueue(svc.EnqueueRequest(queue="slow", max_attempts=1))
    stream = await LeaseStream(metered_stub).subscribe("slow", max_in_flight=1, lease_ms=1000)
    await stream.wait_jobs(1)  # and never acked: the reaper takes it back, dead (no attempt left)

    after = await _scrape_until(
        metered, lambda s: value(s, "jobqueue_lease_expirations_total", queue="slow") == 1
    )
    await stream.close()
    assert value(after, "jobqueue_jobs_dead_total", queue="slow") == 1


async def test_the_oldest_queued_jobs_age_grows_until_it_is_leased(metered: App, metered_stub: Stub) -> None:
    await metered_stub.Enqueue(svc.EnqueueRequest(queue="stuck"))
    first = await _scrape_until(
        metered, lambda s: ("jobqueue_queue_oldest_job_age_seconds", (("queue", "stuck"),)) in s
    )
    later = await _scrape_until(
        metered,
        lambda s: (
            value(s, "jobqueue_queue_oldest_job_age_seconds", queue="stuck")
            > value(first, "jobqueue_queue_oldest_job_age_seconds", queue="stuck")
        ),
    )
    assert value(later, "jobqueue_queue_jobs", queue="stuck", state="queued") == 1


async def _scrape_until(app: App, condition: object, timeout_s: float = 15.0) -> Samples:
    """Scrapes until `condition(samples)` holds (the gauges are read from Redis every 0.1 s)."""
    async with asyncio.timeout(timeout_s):
        while True:
            samples = await scrape(app)
            if condition(samples):  # type: ignore[operator]
                return samples
            await asyncio.sleep(0.05)


async def test_the_python_worker_reports_how_long_its_handler_ran(metered: App, metered_stub: Stub) -> None:
    from jobqueue import JobContext, Worker

    async def handler(payload: dict[str, object], ctx: JobContext) -> None:
        await asyncio.sleep(0.05)

    worker = Worker(f"127.0.0.1:{metered.port}", handlers={"timed": handler})
    running = asyncio.create_task(worker.run())
    await metered_stub.Enqueue(svc.EnqueueRequest(queue="timed"))
    done = {"queue": "timed", "outcome": "completed"}
    after = await _scrape_until(
        metered, lambda s: value(s, "jobqueue_job_processing_seconds_count", **done) == 1
    )
    worker.stop(now=True)
    await running
    assert 0.05 <= value(after, "jobqueue_job_processing_seconds_sum", **done) < 5
