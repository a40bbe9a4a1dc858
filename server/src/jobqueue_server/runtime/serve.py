"""`jobq serve`: runs one server until SIGTERM or SIGINT, then stops gracefully."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Callable
from urllib.parse import urlsplit

from jobqueue_server.api.job_wire import stored_part_of
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import (
    SettingsError,
    check_durability,
    check_redis,
    connect_redis,
    default_durability,
    limits,
    start_app,
    store_config,
)
from jobqueue_server.runtime.processes import supervise
from jobqueue_server.runtime.tls import TlsFiles
from jobqueue_server.runtime.valkey import EmbeddedValkey, private_dir, stored_password
from jobqueue_server.store import Store

logger = logging.getLogger(__name__)


async def serve(settings: ServerSettings) -> None:
    """Serves until SIGTERM or SIGINT: one server, or `processes` of them on one port."""
    limits(settings)  # refuses limits that let a job outgrow a message, before anything starts
    check_exposure(settings)
    TlsFiles.chosen(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    stop = _stop_on_signals()  # before anything starts: a SIGTERM at any point stops cleanly
    embedded: EmbeddedValkey | None = None
    url = settings.redis_url
    if url is None:
        valkey_dir = private_dir(settings.data_dir.resolve()) / "valkey"
        embedded = EmbeddedValkey(valkey_dir, password=stored_password(valkey_dir), dies_with_parent=True)
        embedded.launch()  # from the loop's thread, which lives as long as this process
        await asyncio.to_thread(embedded.wait_ready)
        url = embedded.local_url
        logger.info("embedded valkey at %s, data in %s", redacted_url(url), embedded.data_dir)
    try:
        if settings.process_count() > 1:
            # Here, not in each server: a big store of the previous layout takes longer to move
            # than a server process is given to start listening.
            await _migrate(settings, url)
            await supervise(settings, url, settings.process_count(), stop)
        else:
            await _serve_one(settings, url, stop)
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _serve_one(settings: ServerSettings, url: str, stop: asyncio.Event) -> None:
    redis = connect_redis(url, settings.redis_timeout_seconds)
    try:
        store = Store(redis, store_config(settings))
        await check_redis(store)
        await check_durability(store, default_durability(settings))
        app = await start_app(settings, store)
        _on_signal(signal.SIGHUP, app.reload_certificates)
        print(f"jobqueue listening on {settings.host}:{app.port} (redis {redacted_url(url)})", flush=True)
        await stop.wait()
        logger.info("shutting down: draining streams for up to %.0f s", settings.shutdown_grace_seconds)
        await app.stop()
    finally:
        await redis.aclose()


async def _migrate(settings: ServerSettings, url: str) -> None:
    """Moves jobs stored by the previous layout into this one (store/migrate.py)."""
    redis = connect_redis(url, settings.redis_timeout_seconds)
    try:
        store = Store(redis, store_config(settings))
        await check_redis(store)
        await store.migrate(stored_part_of)
    finally:
        await redis.aclose()


def check_exposure(settings: ServerSettings) -> None:
    """Refuses to listen beyond this machine with nothing checking who calls, unless told to."""
    if settings.http_port is not None and settings.tls_client_ca is not None and not settings.auth:
        # HTTP callers show no client certificate: tokens are then the only check there is.
        raise SettingsError(
            "--http-port with --tls-client-ca needs --auth: HTTP calls carry no client certificate"
        )
    if is_loopback(settings.host) or settings.auth or settings.tls_client_ca is not None:
        return
    if not settings.insecure:
        raise SettingsError(
            f"listening on {settings.host} lets anyone who reaches the port do anything: add --auth "
            "(API tokens) or --tls-client-ca (client certificates), or --insecure to accept that"
        )
    logger.warning(
        "listening on %s without authentication (--insecure): anyone who reaches it can do anything",
        settings.host,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _on_signal(signum: signal.Signals, handler: Callable[[], None]) -> None:
    asyncio.get_running_loop().add_signal_handler(signum, handler)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def redacted_url(url: str) -> str:
    """The URL without its password, for logs: in the user part (``:pw@``) and in the query
    (``?password=pw``, which redis-py reads too)."""
    parts = urlsplit(url)
    shown = url  # edited in place: rebuilding it would rewrite `unix:///path` as `unix:/path`
    if parts.password is not None:
        shown = shown.replace(parts.netloc, parts.netloc.replace(f":{parts.password}@", ":***@", 1), 1)
    if parts.query:
        pairs = parts.query.split("&")
        query = "&".join("password=***" if p.partition("=")[0].lower() == "password" else p for p in pairs)
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown
