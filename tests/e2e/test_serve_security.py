"""`jobq serve` as a stranger meets it: loopback by default, no exposure without auth unless
told, an embedded Valkey with a password and private files, tokens managed from the shell, and
TLS certificates swapped by SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from tests.auth.test_tls import trusting, write_leaf
from tests.e2e.test_cli import Jobq
from tests.processes import ServeProcess, child_env
from tests.support import TestRedis

START_TIMEOUT_S = 60.0


def serve_once(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs `jobq serve ARGS` expecting it to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "jobqueue_cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=child_env({}),
        timeout=START_TIMEOUT_S,
        check=False,
    )


def test_any_address_but_loopback_without_auth_is_refused(test_redis: TestRedis) -> None:
    result = serve_once("--host", "0.0.0.0", "--redis-url", test_redis.url)
    assert result.returncode != 0
    assert "--insecure" in result.stderr and "--auth" in result.stderr


def test_insecure_exposes_it_with_a_warning(test_redis: TestRedis) -> None:
    server = ServeProcess(["--host", "0.0.0.0", "--insecure", "--redis-url", test_redis.url])
    try:
        assert "without authentication (--insecure)" in server.output
    finally:
        server.close()


def test_the_default_address_is_loopback() -> None:
    from jobqueue_server.config import ServerSettings

    assert ServerSettings().host == "127.0.0.1"


async def test_the_embedded_valkey_needs_its_password_and_keeps_its_files_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServeProcess(["--data-dir", str(data)])
    try:
        assert oct(data.stat().st_mode & 0o777) == oct(0o700)
        valkey = data / "valkey"
        assert oct(valkey.stat().st_mode & 0o777) == oct(0o700)
        assert oct((valkey / "password").stat().st_mode & 0o777) == oct(0o600)
        for path in (valkey / "appendonlydir").iterdir():
            assert path.stat().st_mode & 0o077 == 0, path
        password = (valkey / "password").read_text().strip()
        assert password not in server.output  # the start line and the log redact it
        stranger = Redis(unix_socket_path=str(valkey / "valkey.sock"))
        with pytest.raises(redis_errors.ConnectionError, match="Authentication required"):
            await stranger.ping()
        await stranger.aclose()
        owner = Redis(unix_socket_path=str(valkey / "valkey.sock"), password=password)
        assert await owner.ping()
        await owner.aclose()
    finally:
        server.close()


@pytest.fixture
def auth_server(test_redis: TestRedis, tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(
        ["--auth", "--redis-url", test_redis.url, "--data-dir", str(tmp_path)],
        {"JOBQ_KEY_PREFIX": f"t{uuid.uuid4().hex[:12]}"},
    )
    yield server
    server.close()


def test_tokens_from_the_shell(auth_server: ServeProcess, tmp_path: Path) -> None:
    admin = (tmp_path / "admin.token").read_text().strip()
    jobq = Jobq(auth_server.target)
    refused = jobq("stats")
    assert refused.returncode == 1 and "TOKEN_MISSING" in refused.stderr
    made = jobq("token", "create", "mailer", "--role", "producer", "--queue", "emails*", "--token", admin)
    assert made.returncode == 0, made.stderr
    producer = made.stdout.strip()
    assert jobq("enqueue", "emails", "{}", "--token", producer).returncode == 0
    outside = jobq("enqueue", "images", "{}", "--token", producer)
    assert outside.returncode == 1 and "QUEUE_NOT_ALLOWED" in outside.stderr
    listed = jobq.json("token", "list", "--token", admin)["tokens"]
    (mailer,) = [t for t in listed if t["name"] == "mailer"]
    assert mailer["role"] == "producer" and mailer["queues"] == ["emails*"]
    assert producer not in str(listed)
    assert jobq("token", "revoke", mailer["token_id"], "--token", admin).returncode == 0
    revoked = jobq("enqueue", "emails", "{}", "--token", producer)
    assert revoked.returncode == 1 and "TOKEN_INVALID" in revoked.stderr


async def _healthy(target: str, credentials: grpc.ChannelCredentials) -> bool:
    async with grpc.aio.secure_channel(target, credentials) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return False
    return True


async def test_sighup_swaps_the_tls_certificate(test_redis: TestRedis, tmp_path: Path) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    cert, key = write_leaf(old_ca.issue_cert("localhost", "127.0.0.1"), tmp_path, "server")
    server = ServeProcess(["--redis-url", test_redis.url, "--tls-cert", str(cert), "--tls-key", str(key)])
    target = f"localhost:{server.port}"
    try:
        assert await _healthy(target, trusting(old_ca))
        write_leaf(new_ca.issue_cert("localhost", "127.0.0.1"), tmp_path, "server")
        server.send_signal(signal.SIGHUP)
        async with asyncio.timeout(30):  # the signal is handled on the server's loop, soon after
            while not await _healthy(target, trusting(new_ca)):
                await asyncio.sleep(0.05)
        assert not await _healthy(target, trusting(old_ca))
    finally:
        server.close()


def test_a_worker_with_refused_credentials_exits_saying_why(
    auth_server: ServeProcess, tmp_path: Path
) -> None:
    admin = (tmp_path / "admin.token").read_text().strip()
    jobq = Jobq(auth_server.target)
    producer = jobq("token", "create", "app", "--role", "producer", "--queue", "emails", "--token", admin)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobqueue_cli",
            "worker",
            "--queues",
            "emails",
            "--target",
            auth_server.target,
        ],
        capture_output=True,
        text=True,
        env=child_env({"JOBQ_TOKEN": producer.stdout.strip()}),
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 1
    assert "refused the worker's credentials: ROLE_NOT_ALLOWED" in result.stderr
