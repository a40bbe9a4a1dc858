"""Builds and runs a server: the store, the gRPC services, the background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry import trace
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from jobqueue import otlp
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.alerts.dispatcher import WebhookDispatcher
from jobqueue_server.api.framing import MAX_MESSAGE_BYTES, largest_job_bytes
from jobqueue_server.api.job_wire import stored_part_of
from jobqueue_server.api.registration import add_service
from jobqueue_server.api.servicer import JobQueueServicer
from jobqueue_server.api.validation import Limits
from jobqueue_server.api.webhook_admin import WebhookAdmin
from jobqueue_server.auth.interceptor import AuthInterceptor
from jobqueue_server.auth.registry import TokenRegistry
from jobqueue_server.config import ServerSettings
from jobqueue_server.errors import DurabilityUnavailable, StoreUnavailable
from jobqueue_server.http_api.server import HttpGateway
from jobqueue_server.maintenance import Maintenance
from jobqueue_server.observability.metrics import JobMetrics
from jobqueue_server.observability.queue_gauges import QueueGauges
from jobqueue_server.observability.rpc_metrics import RpcMetrics
from jobqueue_server.observability.rpc_tracing import RpcTracing
from jobqueue_server.resolver import DependencyResolver
from jobqueue_server.runtime import reflection, webhook_file
from jobqueue_server.runtime.bootstrap import write_bootstrap_token
from jobqueue_server.runtime.tls import ReloadingCredentials, TlsFiles
from jobqueue_server.scheduling.scheduler import Scheduler
from jobqueue_server.store import Durability, Store, StoreConfig, cluster, sentinel
from jobqueue_server.store.keys import dependencies_channel
from jobqueue_server.store.pipeline import ClosingRedis
from jobqueue_server.store.signals import QueueSignals
from jobqueue_server.store.tokens import TokenStore

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

logger = logging.getLogger(__name__)

SERVICE_NAME = svc.DESCRIPTOR.services_by_name["JobQueueService"].full_name
HEALTH_INTERVAL_S = 1.0
TASK_STOP_TIMEOUT_S = 5.0
# How long streams get to end with their UNAVAILABLE status before connections are cut.
STREAM_END_TIMEOUT_S = 2.0
# Long streams behind NAT and proxies: ping idle connections so dead peers are noticed.
GRPC_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def connect_redis(url: str, timeout_s: float) -> Redis:
    """A client that fails fast when Redis is gone, so calls end with UNAVAILABLE.

    No socket_timeout: the store bounds each exchange with asyncio instead (see Store).
    A `redis+cluster://` URL gives a Redis Cluster client (store/cluster.py), a
    `redis+sentinel://` URL a client of the primary the sentinels name (store/sentinel.py).
    """
    if cluster.is_cluster_url(url):
        return cluster.connect(url, timeout_s)
    if sentinel.is_sentinel_url(url):
        return sentinel.connect(url, timeout_s)
    return ClosingRedis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def store_config(settings: ServerSettings) -> StoreConfig:
    return StoreConfig(
        key_prefix=settings.key_prefix,
        idempotency_window_ms=int(settings.idempotency_window_seconds * 1000),
        retention_ms=int(settings.retention_seconds * 1000),
        default_lease_ms=int(settings.default_lease_seconds * 1000),
        command_timeout_ms=int(settings.redis_timeout_seconds * 1000),
        fsync_timeout_ms=int(settings.fsync_timeout_seconds * 1000),
        replicas_to_wait=settings.replicas_to_wait,
        replication_timeout_ms=int(settings.replication_timeout_seconds * 1000),
        max_queues=settings.max_queues,
    )


class SettingsError(ValueError):
    """Settings the server refuses to start with."""


def limits(settings: ServerSettings) -> Limits:
    """The validation limits, refused when they would let one job outgrow a gRPC message."""
    chosen = Limits(
        max_payload_bytes=settings.max_payload_bytes,
        max_batch=settings.max_batch,
        max_in_flight=settings.max_in_flight,
        max_metadata_entries=settings.max_metadata_entries,
        max_error_bytes=settings.max_error_bytes,
        max_lease_ms=int(settings.max_lease_seconds * 1000),
        default_max_attempts=settings.default_max_attempts,
        default_durability=default_durability(settings),
        subscribe_timeout_s=settings.subscribe_timeout_seconds,
    )
    largest = largest_job_bytes(chosen, store_config(settings).max_errors_kept)
    if largest > MAX_MESSAGE_BYTES - 64:
        raise SettingsError(
            f"these limits allow a job of {largest:,} bytes, more than the {MAX_MESSAGE_BYTES:,} a gRPC "
            "client accepts by default; lower max_payload_bytes, max_metadata_entries or max_error_bytes"
        )
    return chosen


def default_durability(settings: ServerSettings) -> Durability:
    return Durability[settings.default_durability.upper()]


@dataclass
class App:
    """A running server: gRPC on `port`, plus its background tasks."""

    settings: ServerSettings
    store: Store
    server: grpc.aio.Server
    servicer: JobQueueServicer
    health: HealthServicer
    port: int
    maintenance: Maintenance
    signals: QueueSignals
    scheduler: Scheduler
    resolver: DependencyResolver
    webhook_dispatcher: WebhookDispatcher
    tls: ReloadingCredentials | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: The HTTP server of --metrics-port, and the port it listens on (None: no metrics).
    metrics_server: WSGIServer | None = None
    metrics_port: int | None = None
    #: The HTTP/JSON gateway of --http-port, and the port it listens on (None: none).
    http: HttpGateway | None = None
    http_port: int | None = None
    #: The tracer provider exporting over OTLP that this app made (None: not exporting).
    exporting: SdkTracerProvider | None = None

    def reload_certificates(self) -> None:
        """Reads the TLS files again before the next handshake (SIGHUP)."""
        if self.tls is not None:
            self.tls.request_reload()

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: no new streams or jobs, settle or release what is held, exit."""
        grace = self.settings.shutdown_grace_seconds if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()
        self.servicer.drain()
        await _wait_until(lambda: self.servicer.held_jobs == 0, grace)
        self.servicer.end_streams()
        await _wait_until(lambda: self.servicer.open_streams == 0, STREAM_END_TIMEOUT_S)
        await self.server.stop(0)
        if self.http is not None:
            self.http.remove_socket()
        if self.http is not None:
            await self.http.stop()
        await self.servicer.wait_closed()
        self.resolver.close()
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.shutdown)
            self.metrics_server.server_close()
        for task in self.tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self.tasks, timeout=TASK_STOP_TIMEOUT_S)
        if stuck:  # a library that swallowed the cancellation must not block the exit
            logger.warning("background tasks did not stop: %s", [t.get_name() for t in stuck])
        if self.exporting is not None:  # sends the spans still batched
            await asyncio.to_thread(self.exporting.shutdown)


async def _wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    # A short poll, only during shutdown: the held count changes in too many places to signal.
    while not condition() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def start_app(
    settings: ServerSettings, store: Store, tracer_provider: TracerProvider | None = None
) -> App:
    """Starts the gRPC server on settings.host:settings.port (0 picks a free port), once jobs
    stored by the previous layout are moved into this one (a no-op after the first start).

    A span per call goes to `tracer_provider`, else over OTLP when an endpoint is configured;
    with neither, no tracing code runs."""
    await store.migrate(stored_part_of)
    signals = QueueSignals(store.redis, settings.key_prefix, own_message=store.signal_origin)
    metrics = JobMetrics(CollectorRegistry() if settings.metrics_port is not None else None)
    resolver = DependencyResolver(store, lambda due_ms, queue: maintenance.wake_at(due_ms, queue))
    signals.listen(dependencies_channel(settings.key_prefix), resolver.on_message)
    maintenance = Maintenance(
        store,
        signals,
        settings.sweep_interval_seconds,
        queue_idle_s=settings.queue_idle_seconds,
        resolver=resolver,
        metrics=metrics,
    )
    chosen = limits(settings)
    if settings.webhooks_file is not None:
        await _apply_webhooks_file(store, settings.webhooks_file)
    tokens = TokenStore(store.redis, settings.key_prefix, settings.redis_timeout_seconds)
    registry = TokenRegistry(tokens) if settings.auth else None
    scheduler = Scheduler(
        store.schedules,
        store.now_ms,
        lambda requests: servicer.enqueue_scheduled(requests),
        settings.sweep_interval_seconds,
    )
    servicer = JobQueueServicer(
        store,
        signals,
        chosen,
        settings.sweep_interval_seconds,
        maintenance.wake_at,
        tokens,
        registry.refresh if registry is not None else None,
        max_schedules=settings.max_schedules,
        schedules_changed=scheduler.wake,
        metrics=metrics,
    )
    health = HealthServicer()
    redis = RedisReachability()
    metrics.gauges(lambda: servicer.open_streams, lambda: servicer.held_jobs, lambda: redis.up)
    interceptors: list[grpc.aio.ServerInterceptor] = [RpcMetrics(metrics)] if metrics.enabled else []
    exporting = _exporting_provider(settings) if tracer_provider is None else None
    if tracer_provider or exporting:
        interceptors.insert(
            0, RpcTracing(trace.get_tracer("jobqueue_server", tracer_provider=tracer_provider or exporting))
        )
    if registry is not None:
        await write_bootstrap_token(tokens, admin_token_path(settings), store.clock.now_ms())
        await registry.refresh()
        interceptors.append(AuthInterceptor(registry, max(chosen.max_batch, chosen.max_in_flight)))
    # A second server on a busy port must fail, not silently share the port's traffic, unless
    # it is one of the processes of `--processes`, which share it on purpose.
    server = grpc.aio.server(
        options=[*GRPC_OPTIONS, ("grpc.so_reuseport", int(settings.reuse_port))], interceptors=interceptors
    )
    add_service(servicer, server)
    gateway_socket = _gateway_socket(server) if settings.http_port is not None else None
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if settings.reflection:
        reflection.enable(server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    address = f"{settings.host}:{settings.port}"
    files = TlsFiles.chosen(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    tls = ReloadingCredentials(files) if files is not None else None
    port = server.add_secure_port(address, tls.credentials) if tls else server.add_insecure_port(address)
    await server.start()
    dispatcher = WebhookDispatcher(store, store.webhooks, settings.webhook_interval_seconds)
    app = App(
        settings,
        store,
        server,
        servicer,
        health,
        port,
        maintenance,
        signals,
        scheduler,
        resolver,
        dispatcher,
        tls,
    )
    app.exporting = exporting
    app.tasks = [
        asyncio.create_task(signals.run(), name="signals"),
        asyncio.create_task(maintenance.run(), name="maintenance"),
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(_report_health(store, health, redis), name="health"),
        asyncio.create_task(dispatcher.run(), name="webhooks"),
    ]
    if gateway_socket is not None and settings.http_port is not None:
        app.http = await HttpGateway.start(gateway_socket, settings.host, settings.http_port)
        app.http_port = app.http.port
        logger.info("HTTP/JSON on http://%s:%d/v1/", settings.host, app.http_port)
    if metrics.registry is not None and settings.metrics_port is not None:
        gauges = QueueGauges(store, settings.metrics_interval_seconds)
        metrics.registry.register(gauges)
        app.tasks.append(asyncio.create_task(gauges.run(), name="queue gauges"))
        app.metrics_server, _ = start_http_server(settings.metrics_port, settings.host, metrics.registry)
        app.metrics_port = app.metrics_server.server_port
        logger.info("metrics on http://%s:%d/metrics", settings.host, app.metrics_port)
    if registry is not None:
        app.tasks.append(asyncio.create_task(registry.run(), name="tokens"))
    logger.info("jobqueue server listening on %s:%d", settings.host, port)
    return app


async def _apply_webhooks_file(store: Store, path: Path) -> None:
    try:
        declared = webhook_file.read(path)
        await webhook_file.apply(WebhookAdmin(store.webhooks, store.now_ms), path, declared)
    except webhook_file.WebhookFileError as error:
        raise SettingsError(str(error)) from None
    logger.info("%d webhooks from %s", len(declared), path)


def _exporting_provider(settings: ServerSettings) -> SdkTracerProvider | None:
    endpoint = otlp.configured_endpoint(settings.otlp_endpoint)
    if endpoint is None:
        return None
    logger.info("trace spans exported over OTLP to %s", endpoint)
    return otlp.install(endpoint, "jobqueue-server")


def admin_token_path(settings: ServerSettings) -> Path:
    return settings.admin_token_file or settings.data_dir / "admin.token"


def _gateway_socket(server: grpc.aio.Server) -> str:
    """A Unix socket the gRPC server also listens on, in a folder only this user may enter: the
    HTTP gateway calls the service through it, behind the same interceptors (tokens, metrics) and
    without TLS (which the TCP port may require)."""
    path = f"{tempfile.mkdtemp(prefix='jobq-gateway-')}/grpc.sock"
    server.add_insecure_port(f"unix:{path}")
    return path


@dataclass
class RedisReachability:
    """Whether Redis answered the last health check (the jobqueue_redis_up gauge)."""

    up: bool = True


async def _report_health(store: Store, health: HealthServicer, redis: RedisReachability) -> None:
    """SERVING while Redis answers; NOT_SERVING while it does not."""
    serving: bool | None = None
    while True:
        try:
            await store.ping()
            now_serving = True
        except StoreUnavailable:
            now_serving = False
        redis.up = now_serving
        if now_serving != serving:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if now_serving
                else (health_pb2.HealthCheckResponse.NOT_SERVING)
            )
            for name in ("", SERVICE_NAME):
                await health.set(name, status)
            if serving is not None:
                logger.warning("redis %s", "reachable again" if now_serving else "unreachable")
            serving = now_serving
        await asyncio.sleep(HEALTH_INTERVAL_S)


async def check_redis(store: Store) -> None:
    """Loads the scripts and warns when Redis may evict jobs under memory pressure."""
    await store.load_scripts()
    await store.partitions.refresh()
    with contextlib.suppress(Exception):
        policy = await store.eviction_policy()
        if policy != "noeviction":
            logger.warning(
                "redis maxmemory-policy is %r: Redis may evict jobs under memory pressure; "
                "set it to 'noeviction'",
                policy,
            )


async def check_durability(store: Store, default: Durability) -> None:
    """Says at start whether DURABILITY_FSYNCED and DURABILITY_REPLICATED are available; when
    one is the default and is not, raises DurabilityUnavailable: a server must not start promising what Redis
    cannot keep."""
    problem = await store.fsync_problem()
    if problem is None:
        logger.info("durability: fsynced available (WAITAOF on the append-only file)")
    elif default is Durability.FSYNCED:
        raise DurabilityUnavailable(f"the default durability is fsynced, but {problem}")
    else:
        logger.warning("durability fsynced unavailable, requests asking for it are refused: %s", problem)
    replication = await store.replication_problem()
    if replication is None:
        logger.info("durability: replicated available (WAIT on the replicas)")
    elif default is Durability.REPLICATED:
        raise DurabilityUnavailable(f"the default durability is replicated, but {replication}")
    else:
        logger.info("durability replicated unavailable, requests asking for it are refused: %s", replication)
