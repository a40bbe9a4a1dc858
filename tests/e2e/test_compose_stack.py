"""docker-compose.yml's services, run as local processes with the commands and environments the
file gives them: its certificates, TLS, tokens and secrets must work together as written.

No Docker engine runs here, so what compose itself provides is stood in for, and only that: the
volumes are folders (`/certs` is `<tmp>/certs`, ...), the service names resolve to loopback
(`server:50051` is the server's port on localhost, which its certificate names too), Redis is the
test Redis, Mailpit is an SMTP sink, and the port is a free one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobqueue import Client, JobState, Tls
from jobqueue.errors import Unauthenticated
from jobqueue_server.runtime.healthcheck import main as healthcheck
from jobqueue_server.runtime.valkey import free_port
from tests.e2e.conftest import SmtpSink
from tests.processes import ServeProcess, child_env
from tests.support import TestRedis

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 60.0
VOLUMES = ("/certs", "/data", "/secrets")


def services() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = document["services"]
    return found


class Stand:
    """What compose provides, stood in for: folders for volumes, loopback for service names."""

    def __init__(self, tmp: Path, port: int, redis_url: str, smtp_port: int) -> None:
        self.tmp, self.port, self.redis_url, self.smtp_port = tmp, port, redis_url, smtp_port
        for volume in VOLUMES:
            (tmp / volume.strip("/")).mkdir()

    def text(self, value: str) -> str:
        for volume in VOLUMES:
            value = value.replace(volume, str(self.tmp / volume.strip("/")))
        return value.replace("server:50051", f"localhost:{self.port}").replace(
            "localhost:50051", f"localhost:{self.port}"
        )

    def env(self, service: Mapping[str, Any], prefix: str) -> dict[str, str]:
        given = {k: self.text(str(v)) for k, v in (service.get("environment") or {}).items()}
        given |= {"JOBQ_KEY_PREFIX": prefix}
        if "JOBQ_REDIS_URL" in given:
            given["JOBQ_REDIS_URL"] = self.redis_url
        if "JOBQ_PORT" in given:
            given["JOBQ_PORT"] = str(self.port)
        if "JOBQ_SMTP_HOST" in given:
            given |= {"JOBQ_SMTP_HOST": "127.0.0.1", "JOBQ_SMTP_PORT": str(self.smtp_port)}
        bin_dir = str(Path(sys.executable).parent)  # `jobq` for the shell commands
        return child_env(given) | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def argv(self, service: Mapping[str, Any]) -> list[str]:
        command = [self.text(word) for word in service["command"]]
        entrypoint = service.get("entrypoint")
        if entrypoint is None:  # the image's: jobq
            return [sys.executable, "-m", "jobqueue_cli", *command]
        return [*entrypoint, *command]


def run_once(stand: Stand, service: Mapping[str, Any], prefix: str) -> None:
    done = subprocess.run(
        stand.argv(service),
        env=stand.env(service, prefix),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def stand(tmp_path: Path, test_redis: TestRedis, smtp: SmtpSink) -> Stand:
    return Stand(tmp_path, free_port(), test_redis.url, smtp.port)


def test_the_compose_stack_runs_encrypted_and_authenticated(stand: Stand, smtp: SmtpSink) -> None:
    compose = services()
    prefix = f"t{uuid.uuid4().hex[:12]}"
    assert "ports" not in compose["redis"]  # Redis stays inside the compose network

    run_once(stand, compose["certs"], prefix)
    # ServeProcess adds --host 127.0.0.1 --port 0 (compose's 0.0.0.0:50051 inside its network).
    server = ServeProcess([], stand.env(compose["server"], prefix))
    try:
        stand.port = server.port
        server_env = stand.env(compose["server"], prefix)  # also what `compose exec` commands get
        ca = server_env["JOBQ_TLS_CA"]
        assert healthcheck(["--tls-ca", ca, f"localhost:{server.port}"]) == 0

        run_once(stand, compose["tokens"], prefix)
        run_once(stand, compose["tokens"], prefix)  # a restart keeps the worker's token
        log = (stand.tmp / "worker.log").open("w")
        worker = subprocess.Popen(
            stand.argv(compose["worker"]), env=stand.env(compose["worker"], prefix), stdout=log, stderr=log
        )
        try:
            # `docker compose exec server jobq enqueue ...`: the server's environment, as admin.
            enqueued = subprocess.run(
                [sys.executable, "-m", "jobqueue_cli", "enqueue", "emails",
                 '{"to":"user@example.com","subject":"Welcome!","body":"hi"}', "--json"],
                env=server_env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
            )  # fmt: skip
            assert enqueued.returncode == 0, enqueued.stderr
            job_id = json.loads(enqueued.stdout)["job_id"]
            admin = (stand.tmp / "data" / "admin.token").read_text().strip()
            with Client(f"localhost:{server.port}", token=admin, tls=Tls(ca_file=ca)) as client:
                job = client.wait(job_id, timeout=JOB_TIMEOUT_S)
                (worker_token,) = [t for t in client.list_tokens() if t.role == "worker"]
            assert job.state == JobState.COMPLETED, (stand.tmp / "worker.log").read_text()
            assert worker_token.queues == ("emails", "images")
            assert smtp.mailbox.messages()[0]["subject"] == "Welcome!"  # sent before the ack
        finally:
            worker.terminate()
            worker.wait(RUN_TIMEOUT_S)
            log.close()
        with (
            Client(f"localhost:{server.port}", tls=Tls(ca_file=ca)) as anonymous,
            pytest.raises(Unauthenticated),
        ):
            anonymous.stats()
    finally:
        server.close()
