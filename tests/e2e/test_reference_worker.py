"""`jobq worker` as a real process, against a real `jobq serve`, SMTP server and HTTP server.

The SMTP server (aiosmtpd) and the image server (stdlib HTTP) run in threads of the test; the
jobqueue server and the workers are child processes. Jobs go in and are read back with the Python
client. A "gated" image makes its download wait until the test opens the gate, so a test knows a
job is running (the request arrived) and decides when it may finish, without sleeping.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from jobqueue import Client, JobInfo, JobState
from tests.e2e.conftest import SmtpSink, Spawn
from tests.processes import ChildProcess, ServeProcess

SENDER = "Jobs <jobs@example.com>"
JOB_TIMEOUT_S = 60.0
#: Upper bound on a gated request's wait, so a failed test cannot hang the HTTP server's shutdown.
GATE_TIMEOUT_S = 60.0
SOURCE_SIZE = (800, 600)

StartWorker = Callable[..., ChildProcess]


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class ImageServer:
    """Serves images by path; requests for a gated path wait until `release` is set."""

    base_url: str = ""
    images: dict[str, bytes] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    #: Set when a request for a gated path arrives: its job is running in a worker.
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def add(self, path: str, body: bytes, *, gated: bool = False) -> str:
        self.images[path] = body
        if gated:
            self.gated.add(path)
        return f"{self.base_url}{path}"


def _handler_for(state: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in state.gated:
                state.arrived.set()
                state.release.wait(GATE_TIMEOUT_S)
            body = state.images.get(self.path)
            # The worker that asked may have been killed while the request waited.
            with contextlib.suppress(ConnectionError):
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    state = ImageServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()  # server_close() joins request threads: none may still be waiting
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def png(size: tuple[int, int] = SOURCE_SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, format="PNG")
    return buffer.getvalue()


# --- processes ----------------------------------------------------------------------------------


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def start_worker(server: ServeProcess, smtp: SmtpSink, output_dir: Path, spawn: Spawn) -> StartWorker:
    """Starts `jobq worker` processes wired to the test's servers; extra flags are appended.

    `spawn` comes after `server` so that workers are stopped before the server at teardown.
    """

    def start(*flags: str) -> ChildProcess:
        return spawn(
            [
                "worker",
                *("--target", server.target, "--log-level", "INFO"),
                *("--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--smtp-security", "none"),
                *("--smtp-from", SENDER),
                *("--image-output-dir", str(output_dir), "--allow-private-networks"),
                # Longer than any gate is held, so only the test decides when a download ends.
                *("--image-download-timeout", str(GATE_TIMEOUT_S)),
                *flags,
            ]
        )

    return start


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.target) as jobs:
        yield jobs


def finished(client: Client, job_id: str) -> JobInfo:
    return client.wait(job_id, timeout=JOB_TIMEOUT_S)


# --- tests --------------------------------------------------------------------------------------


def test_email_job_is_delivered_over_smtp_and_completes(
    start_worker: StartWorker, client: Client, smtp: SmtpSink
) -> None:
    start_worker()
    payload = {"to": "Ann <ann@example.com>", "cc": "cy@example.com", "subject": "Welcome!", "body": "Hi"}

    job = finished(client, client.enqueue("emails", payload).job_id)

    assert job.state == JobState.COMPLETED, job.last_error
    (envelope,) = smtp.mailbox.envelopes
    (message,) = smtp.mailbox.messages()
    assert envelope.mail_from == "jobs@example.com"
    assert envelope.rcpt_tos == ["ann@example.com", "cy@example.com"]
    assert message["From"] == SENDER
    assert (message["To"], message["Cc"]) == ("Ann <ann@example.com>", "cy@example.com")
    assert message["Subject"] == "Welcome!"
    assert message.get_content().strip() == "Hi"
    assert job.result is not None
    assert job.result["accepted"] == ["ann@example.com", "cy@example.com"]
    assert job.result["message_id"] == message["Message-ID"]


def test_image_job_writes_the_resized_image_and_the_thumbnail(
    start_worker: StartWorker, client: Client, image_server: ImageServer, output_dir: Path
) -> None:
    start_worker()
    url = image_server.add("/photo.png", png())
    operations = [{"op": "resize", "width": 400}, {"op": "thumbnail", "size": 100}]

    job = finished(client, client.enqueue("images", {"imageUrl": url, "operations": operations}).job_id)

    assert job.state == JobState.COMPLETED, job.last_error
    assert job.result is not None
    resized, thumbnail = job.result["outputs"]
    assert (resized["width"], resized["height"]) == (400, 300)
    assert (thumbnail["width"], thumbnail["height"]) == (100, 75)
    for output in (resized, thumbnail):
        path = Path(output["path"])
        assert path.parent == output_dir.resolve()
        with Image.open(path) as written:
            assert (written.format, written.size) == ("PNG", (output["width"], output["height"]))


def test_a_killed_worker_loses_its_job_to_a_new_worker_that_completes_it(
    start_worker: StartWorker, client: Client, image_server: ImageServer
) -> None:
    first = start_worker("--worker-id", "first")
    url = image_server.add("/slow.png", png(), gated=True)
    job_id = client.enqueue("images", {"imageUrl": url, "operations": ["thumbnail"]}).job_id
    assert image_server.arrived.wait(JOB_TIMEOUT_S), first.output
    assert client.get(job_id).worker_id == "first"

    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    start_worker("--worker-id", "second")
    image_server.release.set()
    job = finished(client, job_id)

    assert job.state == JobState.COMPLETED, job.last_error
    assert job.attempts == 2
    assert [(e.attempt, e.message) for e in job.errors] == [(1, "lease released: stream closed")]


def test_sigterm_lets_the_running_job_finish_then_exits_zero(
    start_worker: StartWorker, client: Client, image_server: ImageServer
) -> None:
    worker = start_worker("--grace-seconds", "30")
    url = image_server.add("/slow.png", png(), gated=True)
    job_id = client.enqueue("images", {"imageUrl": url, "operations": ["thumbnail"]}).job_id
    assert image_server.arrived.wait(JOB_TIMEOUT_S), worker.output

    worker.send_signal(signal.SIGTERM)
    worker.wait_for_text("SIGTERM: finishing running jobs")
    late_id = client.enqueue("images", {"imageUrl": image_server.add("/late.png", png())}).job_id
    image_server.release.set()

    assert worker.wait() == 0, worker.output
    job = client.get(job_id)  # no waiting: the worker confirmed the ack before it exited
    assert job.state == JobState.COMPLETED, job.last_error
    assert job.attempts == 1
    assert client.get(late_id).state == JobState.QUEUED  # a stopping worker takes no new job


def test_an_invalid_address_makes_the_email_job_dead_after_one_attempt(
    start_worker: StartWorker, client: Client, smtp: SmtpSink
) -> None:
    start_worker()
    payload = {"to": "not an address", "subject": "Hi", "body": "..."}

    job = finished(client, client.enqueue("emails", payload, max_attempts=5).job_id)

    assert job.state == JobState.DEAD
    assert job.attempts == 1
    assert job.last_error.startswith("NonRetryableError: to: ")
    assert "'not an address'" in job.last_error.splitlines()[0]
    assert smtp.mailbox.envelopes == []


def test_python_m_jobqueue_worker_takes_its_settings_from_the_environment(
    server: ServeProcess, spawn: Spawn, client: Client, smtp: SmtpSink
) -> None:
    env = {
        "JOBQ_TARGET": server.target,
        "JOBQ_QUEUES": "emails",
        "JOBQ_SMTP_HOST": "127.0.0.1",
        "JOBQ_SMTP_PORT": str(smtp.port),
        "JOBQ_SMTP_SECURITY": "none",
        "JOBQ_SMTP_FROM": "env@example.com",
    }
    spawn([], env, module="jobqueue_worker")

    job = finished(client, client.enqueue("emails", {"to": "ann@example.com", "subject": "Hi"}).job_id)

    assert job.state == JobState.COMPLETED, job.last_error
    (message,) = smtp.mailbox.messages()
    assert message["From"] == "env@example.com"


def test_jobq_worker_refuses_a_queue_it_has_no_handler_for(spawn: Spawn) -> None:
    worker = spawn(["worker", "--queues", "emails,reports"], {"JOBQ_CONCURRENCY": "0"})

    assert worker.wait() == 2
    assert "no handler for reports" in worker.output
    assert "concurrency: Input should be greater than or equal to 1" in worker.output
    assert "Traceback" not in worker.output
