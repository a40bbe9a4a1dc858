"""`jobq dev` as a real process: the tutorial's two jobs complete, then Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import email
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from jobqueue import Client, JobState
from jobqueue_server.runtime.valkey import free_port
from tests.processes import ChildProcess, child_env

READY = re.compile(r"jobq dev ready: pids valkey=(\d+) server=(\d+) worker=(\d+)")
STARTUP_S = 60.0
JOB_TIMEOUT_S = 60.0
STOP_S = 60.0
CLI_TIMEOUT_S = 60.0
EMAIL_JOB = '{"to":"user@example.com","subject":"Welcome!","body":"Thanks for signing up"}'


@dataclass
class DevStack:
    process: ChildProcess
    target: str
    data_dir: Path
    pids: dict[str, int]

    def jobq(self, *args: str) -> Any:
        """Runs a `jobq ... --json` command against the stack and returns its document."""
        result = subprocess.run(
            [sys.executable, "-m", "jobqueue_cli", *args, "--json"],
            capture_output=True,
            text=True,
            env=child_env({"JOBQ_TARGET": self.target}),
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(STOP_S)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    port, smtp_port, metrics_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "data"
    args = ["dev", "--port", str(port), "--smtp-port", str(smtp_port), "--data-dir", str(data_dir)]
    args += ["--metrics-port", str(metrics_port), "--http-port", str(free_port())]
    process = ChildProcess(args)
    pids: dict[str, int] = {}
    try:
        found = process.wait_for_line(READY.search, STARTUP_S)
        pids = dict(zip(("valkey", "server", "worker"), map(int, found.groups()), strict=True))
        yield DevStack(process, f"127.0.0.1:{port}", data_dir, pids)
    finally:
        _clean_up(process, pids)


def _clean_up(process: ChildProcess, pids: dict[str, int]) -> None:
    """After a failed test: stop the stack the normal way, and kill what it left behind."""
    if process.process.poll() is None:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.process.wait(STOP_S)
    process.close()
    for pid in pids.values():  # the children run in their own sessions: a dead parent leaves them
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_tutorial_jobs_complete_and_ctrl_c_stops_every_part(stack: DevStack) -> None:
    # The commands the banner prints, run as a user would paste them.
    printed = re.findall(r" │   (jobq enqueue .*)$", stack.process.output, re.MULTILINE)
    email_command, image_command = (shlex.split(command)[1:] for command in printed)
    image_job = json.loads(image_command[-1])

    email_id = stack.jobq(*email_command)["job_id"]
    image_id = stack.jobq(*image_command)["job_id"]
    with Client(stack.target) as client:
        sent = client.wait(email_id, timeout=JOB_TIMEOUT_S)
        processed = client.wait(image_id, timeout=JOB_TIMEOUT_S)
    stats = {s["queue"]: s for s in stack.jobq("stats")["queues"]}

    assert email_command == ["enqueue", "--target", stack.target, "emails", EMAIL_JOB]
    assert image_job == {
        "imageUrl": str(stack.data_dir.resolve() / "inbox" / "sample.png"),
        "operations": [{"op": "resize", "width": 800}, {"op": "thumbnail", "size": 128}],
    }
    assert sent.state == JobState.COMPLETED, sent.errors
    assert processed.state == JobState.COMPLETED, processed.errors
    assert (stats["emails"]["completed"], stats["images"]["completed"]) == (1, 1)
    (mail_file,) = (stack.data_dir / "mail").glob("*.eml")
    message = email.message_from_bytes(mail_file.read_bytes(), policy=default_policy)
    assert (message["subject"], message["to"]) == ("Welcome!", "user@example.com")
    assert message.get_content().strip() == "Thanks for signing up"
    assert processed.result is not None
    # The banner's metrics address: the server counted both jobs, and the worker's handler times.
    (metrics_url,) = re.findall(r"metrics (http://\S+/metrics)", stack.process.output)
    with urllib.request.urlopen(metrics_url, timeout=5) as page:
        samples = {
            (sample.name, sample.labels.get("queue")): sample.value
            for family in text_string_to_metric_families(page.read().decode())
            for sample in family.samples
            if sample.labels.get("outcome") in (None, "completed")
        }
    assert samples[("jobqueue_jobs_completed_total", "emails")] == 1
    assert samples[("jobqueue_job_processing_seconds_count", "images")] == 1
    thumbnail = processed.result["outputs"][-1]
    assert Path(thumbnail["path"]).parent == stack.data_dir.resolve() / "images"
    with Image.open(thumbnail["path"]) as image:
        assert max(image.size) == 128 and image.size == (thumbnail["width"], thumbnail["height"])

    assert stack.stop() == 0, stack.process.output
    stopping = re.findall(r" │ stopping (\w+)", stack.process.output)
    assert stopping == ["worker", "server", "valkey", "smtp"], stack.process.output
    assert not [name for name, pid in stack.pids.items() if alive(pid)], stack.process.output


@pytest.mark.parametrize("busy_option", ["--port", "--smtp-port"])
def test_a_busy_port_fails_the_start_with_a_clear_line(tmp_path: Path, busy_option: str) -> None:
    ports = {"--port": free_port(), "--smtp-port": free_port()}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports[busy_option] = busy.getsockname()[1]
        port, smtp_port = str(ports["--port"]), str(ports["--smtp-port"])
        process = ChildProcess(["dev", "--port", port, "--smtp-port", smtp_port, "--data-dir", str(tmp_path)])
        try:
            code = process.wait(STOP_S)
        finally:
            process.close()

    assert code == 1
    assert re.search(rf"could not start: .*127\.0\.0\.1:{ports[busy_option]}", process.output), process.output


def test_secure_dev_stack_runs_the_tutorial_over_tls_with_tokens(tmp_path: Path) -> None:
    from jobqueue import PermissionDenied, Tls, Unauthenticated, Unavailable

    port, smtp_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    process = ChildProcess(
        ["dev", "--secure", "--port", str(port), "--smtp-port", str(smtp_port), "--data-dir", str(data_dir)]
    )
    pids: dict[str, int] = {}
    try:
        found = process.wait_for_line(READY.search, STARTUP_S)
        pids = dict(zip(("valkey", "server", "worker"), map(int, found.groups()), strict=True))
        # The line the banner tells a user to paste.
        (exported,) = re.findall(r"export (JOBQ_TLS_CA=\S+) JOBQ_TOKEN=\$\(cat (\S+)\)", process.output)
        ca = exported[0].partition("=")[2]
        admin = Path(exported[1]).read_text().strip()
        target = f"127.0.0.1:{port}"
        result = subprocess.run(
            [sys.executable, "-m", "jobqueue_cli", "enqueue", "emails", EMAIL_JOB, "--json"],
            capture_output=True,
            text=True,
            env=child_env({"JOBQ_TARGET": target, "JOBQ_TLS_CA": ca, "JOBQ_TOKEN": admin}),
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        job_id = json.loads(result.stdout)["job_id"]
        with Client(target, token=admin, tls=Tls(ca_file=ca)) as client:
            assert client.wait(job_id, timeout=JOB_TIMEOUT_S).state == JobState.COMPLETED, process.output
            worker_token = next(t for t in client.list_tokens() if t.role == "worker")
            assert worker_token.queues == ("emails", "images")
        with Client(target, tls=Tls(ca_file=ca)) as anonymous, pytest.raises(Unauthenticated):
            anonymous.stats()
        with Client(target, token=admin) as plaintext, pytest.raises(Unavailable):
            plaintext.stats()
        with Client(target, token=admin, tls=Tls(ca_file=ca)) as client:
            producer = client.create_token("app", "producer", ["emails"]).token
        with Client(target, token=producer, tls=Tls(ca_file=ca)) as app, pytest.raises(PermissionDenied):
            app.enqueue("images", {})
        assert oct((data_dir / "tls" / "server.key").stat().st_mode & 0o777) == oct(0o600)
        assert process.process.poll() is None
        process.send_signal(signal.SIGINT)
        assert process.process.wait(STOP_S) == 0
    finally:
        _clean_up(process, pids)
