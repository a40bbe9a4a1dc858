"""Log lines as JSON with the job they concern: a handler's own lines and the runtime's lines about
its job carry job_id, queue, attempt and worker_id; other lines carry none."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from jobqueue import AsyncClient, JobContext, JobState
from jobqueue.logs import JobFields, JsonFormatter
from tests.client.conftest import WorkerRunner


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes with --log-format json, while the test runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(JobFields())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


async def test_job_lines_carry_the_job_and_other_lines_do_not(
    client: AsyncClient, workers: WorkerRunner, queue: str, json_lines: io.StringIO
) -> None:
    async def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        logging.getLogger("app.emails").info("sending to %s", payload["to"])
        raise RuntimeError("smtp down")

    worker = workers.new(handlers={queue: handler}, worker_id="w-1")
    workers.start(worker)
    job = await client.enqueue(queue, {"to": "a@example.com"}, max_attempts=1)
    assert (await client.wait(job.job_id, timeout=10)).state is JobState.DEAD
    logging.getLogger("app").info("unrelated")

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    job_fields = {"job_id": job.job_id, "queue": queue, "attempt": 1, "worker_id": "w-1"}
    sent = next(line for line in lines if line["message"] == "sending to a@example.com")
    failed = next(line for line in lines if "failed" in line["message"] and line.get("job_id") == job.job_id)
    other = next(line for line in lines if line["message"] == "unrelated")
    assert {key: sent[key] for key in job_fields} == job_fields and sent["logger"] == "app.emails"
    assert {key: failed[key] for key in job_fields} == job_fields and "smtp down" in failed["exception"]
    assert not set(job_fields) & set(other) and other["level"] == "INFO"
