"""Jobs crossing languages on one server: produced in one, worked in another, read in all three.

Python -> Go worker, Go -> TypeScript worker, TypeScript -> the Python reference worker. Each job's
result is read back with the Python, Go and TypeScript clients, which must agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobqueue import Client, JobState
from tests.conformance.process import WorkerProcess
from tests.conformance.workers import (
    GO_CLIENT,
    NODE_CLIENT,
    ROOT,
    WorkerUnavailable,
    go_command,
    must_run_all,
    node_command,
)
from tests.e2e.conftest import SmtpSink, Spawn
from tests.processes import ServeProcess

TIMEOUT_S = 60.0
PAYLOAD: dict[str, Any] = {
    "action": "echo",
    "nested": {"list": [1, 2.5, "x", None, True], "empty": {}},
    "unicode": "Grüße ✓ 日本語",
    "float": 0.1,
    "big": 2**53,
}


def unavailable(reason: str) -> None:
    if must_run_all():
        raise AssertionError(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def go_producer(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if shutil.which("go") is None:
        unavailable("go is not installed")
    binary = tmp_path_factory.mktemp("go") / "jobq-go"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/jobq-go"], cwd=GO_CLIENT, check=True)
    return [str(binary)]


@pytest.fixture(scope="module")
def node_producer() -> list[str]:
    script = NODE_CLIENT / "dist" / "jobq-node.js"
    if shutil.which("node") is None or not script.exists():
        unavailable("node or clients/node/dist is missing (npm ci && npm run build)")
    return ["node", str(script)]


@pytest.fixture
def workers(server: ServeProcess) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(command_of: Any, tmp_path: Path, server: ServeProcess, started: list[WorkerProcess]) -> None:
    try:
        command = command_of(tmp_path)
    except WorkerUnavailable as missing:
        unavailable(str(missing))
    worker = WorkerProcess(
        command, target=server.target, queue="xlang", concurrency=2, worker_id="x", cwd=ROOT
    )
    started.append(worker)
    worker.wait_line("READY")


def run(command: list[str], server: ServeProcess, *args: str) -> str:
    done = subprocess.run(
        [*command, *args],
        env={"PATH": "/usr/bin:/bin", "JOBQ_TARGET": server.target},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def read_everywhere(
    job_id: str, server: ServeProcess, go: list[str], node: list[str]
) -> list[dict[str, Any]]:
    """The finished job as each language's client reports it: state, attempts, result."""
    with Client(server.target) as client:
        job = client.wait(job_id, timeout=TIMEOUT_S)
    assert job.state in (JobState.COMPLETED, JobState.DEAD), job.last_error
    python_view = {"state": job.state.value.upper(), "attempts": job.attempts, "result": job.result}
    go_view = json.loads(run(go, server, "wait", job_id))
    node_view = json.loads(run(node, server, "wait", job_id))
    return [
        python_view,
        {"state": go_view["state"], "attempts": go_view["attempts"], "result": go_view["result"]},
        {
            "state": node_view["state"].upper(),
            "attempts": node_view["attempts"],
            "result": node_view["result"],
        },
    ]


def test_python_enqueues_the_go_worker_runs_every_client_reads_the_result(
    server: ServeProcess,
    workers: list[WorkerProcess],
    go_producer: list[str],
    node_producer: list[str],
    tmp_path: Path,
) -> None:
    start_worker(go_command, tmp_path, server, workers)
    with Client(server.target) as client:
        job_id = client.enqueue("xlang", PAYLOAD).job_id

    views = read_everywhere(job_id, server, go_producer, node_producer)

    assert views[0]["state"] == "COMPLETED" and views[0]["result"]["payload"] == PAYLOAD
    assert views[0] == views[1] == views[2]


def test_go_enqueues_the_typescript_worker_runs_every_client_reads_the_result(
    server: ServeProcess,
    workers: list[WorkerProcess],
    go_producer: list[str],
    node_producer: list[str],
    tmp_path: Path,
) -> None:
    start_worker(node_command, tmp_path, server, workers)

    job_id = run(go_producer, server, "enqueue", "xlang", json.dumps(PAYLOAD))
    views = read_everywhere(job_id, server, go_producer, node_producer)

    assert views[0]["state"] == "COMPLETED" and views[0]["result"]["payload"] == PAYLOAD
    assert views[0] == views[1] == views[2]


def test_typescript_enqueues_an_email_the_python_reference_worker_sends_it(
    server: ServeProcess, spawn: Spawn, smtp: SmtpSink, go_producer: list[str], node_producer: list[str]
) -> None:
    spawn(
        [
            "worker",
            "--target",
            server.target,
            "--queues",
            "emails",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(smtp.port),
            "--smtp-security",
            "none",
            "--smtp-from",
            "jobs@example.com",
        ]
    )
    email = {"to": "ada@example.com", "subject": "Welcome from TypeScript", "body": "Hello"}

    job_id = run(node_producer, server, "enqueue", "emails", json.dumps(email))
    views = read_everywhere(job_id, server, go_producer, node_producer)

    assert views[0]["state"] == "COMPLETED"
    assert views[0]["result"]["accepted"] == ["ada@example.com"]
    assert views[0] == views[1] == views[2]
    (message,) = smtp.mailbox.messages()
    assert message["Subject"] == "Welcome from TypeScript"
