"""The conformance producer for the Python client (README.md beside this file, "Producer conformance").

The blocking ``jobqueue.Client`` driven by JSON lines: one command per line on stdin, one
answer per line on stdout, in order; exits 0 when stdin ends.

    JOBQ_TARGET=127.0.0.1:50051 python -m tests.conformance.python_producer
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from jobqueue import Client, EnqueueOptions, JobInfo, JobQueueError, JobSpec

Command = dict[str, Any]
# The options passed to the library as they are; delay_ms becomes its `delay`.
PASSED_OPTIONS = frozenset({"priority", "max_attempts", "idempotency_key", "metadata", "durability"})


class CommandError(Exception):
    """A malformed command: the kit's bug, not the library's."""


def options(raw: object) -> EnqueueOptions:
    """The protocol's options as the library's keyword arguments; unknown ones are refused."""
    given = as_object(raw or {}, "options")
    unknown = set(given) - PASSED_OPTIONS - {"delay_ms"}
    if unknown:
        raise CommandError(f"unknown options: {sorted(unknown)}")
    out = {name: value for name, value in given.items() if name in PASSED_OPTIONS}
    if "delay_ms" in given:
        out["delay"] = timedelta(milliseconds=given["delay_ms"])
    return cast(EnqueueOptions, out)  # the library checks each value's type itself


def job_spec(raw: object) -> JobSpec:
    job = as_object(raw, "job")
    return cast(
        JobSpec, {"queue": job["queue"], "payload": job.get("payload"), **options(job.get("options"))}
    )


def as_object(value: object, what: str) -> Command:
    if not isinstance(value, dict):
        raise CommandError(f"{what}: expected an object, got {value!r}")
    return value


def job_json(job: JobInfo) -> Command:
    return {
        "id": job.id,
        "queue": job.queue,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "payload": job.payload,
        "result": job.result,
        "metadata": job.metadata,
        "last_error": job.last_error,
        "errors": [error.message for error in job.errors],
    }


def enqueue(client: Client, command: Command) -> object:
    result = client.enqueue(command["queue"], command.get("payload"), **options(command.get("options")))
    return {"job_id": result.job_id, "duplicate": result.duplicate}


def enqueue_batch(client: Client, command: Command) -> object:
    jobs = [job_spec(job) for job in command["jobs"]]
    results = client.enqueue_many(jobs, durability=command.get("durability"))
    return [{"job_id": result.job_id, "duplicate": result.duplicate} for result in results]


def stats(client: Client, command: Command) -> object:
    counts = ("queue", "queued", "scheduled", "active", "completed", "dead", "cancelled")
    return [{name: getattr(row, name) for name in counts} for row in client.stats(command.get("queue"))]


def list_jobs(client: Client, command: Command) -> object:
    pages = client.list_jobs(command["queue"], command["state"], page_size=command.get("page_size", 100))
    return [job.id for job in pages]


def cancel(client: Client, command: Command) -> object:
    client.cancel(command["job_id"])
    return None


def retry(client: Client, command: Command) -> object:
    client.retry(command["job_id"])
    return None


def wait(client: Client, command: Command) -> object:
    return job_json(client.wait(command["job_id"], timeout=command["timeout_ms"] / 1000))


OPS: dict[str, Callable[[Client, Command], object]] = {
    "enqueue": enqueue,
    "enqueue_batch": enqueue_batch,
    "get": lambda client, command: job_json(client.get(command["job_id"])),
    "stats": stats,
    "list_jobs": list_jobs,
    "cancel": cancel,
    "retry": retry,
    "wait": wait,
}


def error_json(error: Exception) -> Command:
    if isinstance(error, JobQueueError):
        return {"type": type(error).__name__, "reason": error.reason, "code": error.code.name,
                "field": error.field or ""}  # fmt: skip
    # Not the library's typed error (a bad command, a timeout of `wait`): the message helps the reader.
    return {"type": type(error).__name__, "reason": "", "code": "", "field": "", "message": str(error)}


def answer(client: Client, line: str) -> Command:
    try:
        command = as_object(json.loads(line), "command")
        op = OPS.get(command.get("op", ""))
        if op is None:
            raise CommandError(f"unknown op {command.get('op')!r}")
        return {"ok": op(client, command)}
    except Exception as error:  # every failure is an answer: the kit reads exactly one line
        return {"error": error_json(error)}


def main() -> None:
    with Client(os.environ["JOBQ_TARGET"]) as client:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(answer(client, line)), flush=True)


if __name__ == "__main__":
    main()
