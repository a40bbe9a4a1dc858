"""TLS and mTLS handshakes with real certificates made by the test (trustme): a good chain
connects; a wrong CA, a missing or foreign or expired client certificate, an expired server
certificate do not; a reload (SIGHUP's action) serves new certificates to new connections."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from jobqueue import AsyncClient, Tls
from jobqueue.errors import Unavailable
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.runtime.tls import TlsFiles, TlsSettingsError
from jobqueue_server.store import Store

LONG_AGO = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
YESTERDAY = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)


def write_leaf(leaf: trustme.LeafCert, folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def write_ca(ca: trustme.CA, folder: Path, name: str) -> Path:
    path = folder / f"{name}-ca.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return path


@pytest.fixture
def server_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_ca() -> trustme.CA:
    return trustme.CA()


StartTls = Callable[..., Any]


@pytest.fixture
async def start_tls(redis: Redis, settings: ServerSettings, tmp_path: Path) -> AsyncIterator[StartTls]:
    apps: list[App] = []

    async def start(server_leaf: trustme.LeafCert, client_ca: trustme.CA | None = None) -> App:
        cert, key = write_leaf(server_leaf, tmp_path, "server")
        client_ca_file = write_ca(client_ca, tmp_path, "client") if client_ca else None
        chosen = settings.model_copy(
            update={"tls_cert": cert, "tls_key": key, "tls_client_ca": client_ca_file}
        )
        app = await start_app(chosen, Store(redis, store_config(chosen)))
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop(grace_s=0)


async def serving(app: App, credentials: grpc.ChannelCredentials) -> bool:
    """Whether a health check over a new TLS connection with `credentials` succeeds."""
    async with grpc.aio.secure_channel(f"localhost:{app.port}", credentials) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False
    return True


def trusting(ca: trustme.CA, leaf: trustme.LeafCert | None = None) -> grpc.ChannelCredentials:
    if leaf is None:
        return grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    return grpc.ssl_channel_credentials(
        ca.cert_pem.bytes(),
        private_key=leaf.private_key_pem.bytes(),
        certificate_chain=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
    )


async def test_tls_connects_with_the_right_ca_only(start_tls: StartTls, server_ca: trustme.CA) -> None:
    app = await start_tls(server_ca.issue_cert("localhost", "127.0.0.1"))
    assert await serving(app, trusting(server_ca))
    assert not await serving(app, trusting(trustme.CA()))


async def test_plaintext_is_refused_by_a_tls_server(start_tls: StartTls, server_ca: trustme.CA) -> None:
    app = await start_tls(server_ca.issue_cert("localhost", "127.0.0.1"))
    async with grpc.aio.insecure_channel(f"localhost:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_an_expired_server_certificate_is_refused(start_tls: StartTls, server_ca: trustme.CA) -> None:
    app = await start_tls(server_ca.issue_cert("localhost", not_before=LONG_AGO, not_after=YESTERDAY))
    assert not await serving(app, trusting(server_ca))


async def test_mtls_needs_a_valid_client_certificate_of_the_client_ca(
    start_tls: StartTls, server_ca: trustme.CA, client_ca: trustme.CA
) -> None:
    app = await start_tls(server_ca.issue_cert("localhost"), client_ca)
    assert await serving(app, trusting(server_ca, client_ca.issue_cert("worker-1")))
    assert not await serving(app, trusting(server_ca))  # no client certificate
    assert not await serving(app, trusting(server_ca, trustme.CA().issue_cert("worker-1")))  # wrong CA
    expired = client_ca.issue_cert("worker-1", not_before=LONG_AGO, not_after=YESTERDAY)
    assert not await serving(app, trusting(server_ca, expired))


async def test_a_reload_serves_the_new_certificate_to_new_connections(
    start_tls: StartTls, server_ca: trustme.CA, tmp_path: Path
) -> None:
    app = await start_tls(server_ca.issue_cert("localhost"))
    renewed_ca = trustme.CA()
    write_leaf(renewed_ca.issue_cert("localhost"), tmp_path, "server")  # the files the server reads
    assert await serving(app, trusting(server_ca))  # not read before a reload is asked
    app.reload_certificates()
    assert await serving(app, trusting(renewed_ca))
    assert not await serving(app, trusting(server_ca))


async def test_a_failed_reload_keeps_the_certificate_in_use(
    start_tls: StartTls, server_ca: trustme.CA, tmp_path: Path
) -> None:
    app = await start_tls(server_ca.issue_cert("localhost"))
    (tmp_path / "server.pem").write_text("half a file")
    app.reload_certificates()
    assert await serving(app, trusting(server_ca))


async def test_the_python_client_takes_a_ca_and_a_client_certificate(
    start_tls: StartTls, server_ca: trustme.CA, client_ca: trustme.CA, tmp_path: Path
) -> None:
    app = await start_tls(server_ca.issue_cert("localhost"), client_ca)
    cert, key = write_leaf(client_ca.issue_cert("producer"), tmp_path, "client")
    tls = Tls(ca_file=write_ca(server_ca, tmp_path, "server"), cert_file=cert, key_file=key)
    async with AsyncClient(f"localhost:{app.port}", tls=tls, batching=None) as client:
        assert await client.stats() == []
    async with AsyncClient(f"localhost:{app.port}", tls=Tls(ca_file=tls.ca_file), batching=None) as client:
        with pytest.raises(Unavailable):
            await client.stats()


@pytest.mark.parametrize(
    ("cert", "key", "client_ca", "message"),
    [
        ("c.pem", None, None, "go together"),
        (None, None, "ca.pem", "needs --tls-cert"),
    ],
)
def test_partial_tls_settings_are_refused(
    cert: str | None, key: str | None, client_ca: str | None, message: str
) -> None:
    with pytest.raises(TlsSettingsError, match=message):
        TlsFiles.chosen(
            Path(cert) if cert else None, Path(key) if key else None, Path(client_ca) if client_ca else None
        )


def test_unreadable_tls_files_are_named(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "missing.pem", tmp_path / "missing.key", None)
    with pytest.raises(TlsSettingsError, match="missing"):
        files.configuration()


async def test_jobq_certs_files_serve_tls_and_the_healthcheck_verifies_them(
    redis: Redis, settings: ServerSettings, tmp_path: Path
) -> None:
    from jobqueue_cli.devstack.certs import local_certificates
    from jobqueue_server.runtime.healthcheck import main as healthcheck

    made = local_certificates(tmp_path / "certs", ["server", "localhost", "127.0.0.1"])
    assert local_certificates(tmp_path / "certs", ["localhost"]).cert.read_bytes() == made.cert.read_bytes()
    assert oct(made.key.stat().st_mode & 0o777) == oct(0o600)
    chosen = settings.model_copy(update={"tls_cert": made.cert, "tls_key": made.key})
    app = await start_app(chosen, Store(redis, store_config(chosen)))
    try:
        target = f"localhost:{app.port}"
        assert await serving(app, grpc.ssl_channel_credentials(made.ca.read_bytes()))
        assert await asyncio.to_thread(healthcheck, ["--tls-ca", str(made.ca), target]) == 0
        assert await asyncio.to_thread(healthcheck, ["--timeout", "2", target]) == 1  # plaintext
    finally:
        await app.stop(grace_s=0)
