"""Server settings: one object per process, from flags and `JOBQ_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobqueue.logs import LogFormat

MAX_PROCESSES = 256


class ServerSettings(BaseSettings):
    """Every knob of `jobq serve`. Flags override the environment; durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="JOBQ_", extra="ignore")

    host: str = Field(
        "127.0.0.1", description="listen address; any but loopback needs --auth, mTLS or --insecure"
    )
    port: int = Field(50051, ge=0, le=65535)
    processes: int | Literal["auto"] = Field(
        1, description="server processes on one port (SO_REUSEPORT); auto: one per core"
    )
    #: Set by `processes` in each server process it starts, so they can share the port.
    reuse_port: bool = False
    redis_url: str | None = Field(
        None,
        description="redis://, rediss:// or unix:// URL, or redis+cluster://host:port,host:port for a "
        "Redis Cluster; unset starts an embedded Valkey",
    )
    data_dir: Path = Field(Path(".jobq-data"), description="where the embedded Valkey keeps its data")
    key_prefix: str = Field("jq", pattern=r"^[A-Za-z0-9._:-]{1,64}$")

    auth: bool = Field(False, description="require a bearer token on every call (docs/security.md)")
    admin_token_file: Path | None = Field(
        None, description="where --auth writes the first admin token; default <data-dir>/admin.token"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve TLS (with tls_key)")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: require client certificates it signed (mTLS)"
    )
    insecure: bool = Field(False, description="allow a non-loopback address without --auth or mTLS")
    reflection: bool = Field(True, description="serve gRPC reflection (the contract, no data)")

    default_max_attempts: int = Field(3, ge=1, le=1000)
    default_lease_seconds: float = Field(30.0, gt=0)
    max_lease_seconds: float = Field(12 * 3600.0, gt=0)
    idempotency_window_seconds: float = Field(24 * 3600.0, gt=0)
    retention_seconds: float = Field(24 * 3600.0, ge=0)

    max_payload_bytes: int = Field(1024 * 1024, ge=1)
    max_batch: int = Field(1000, ge=1, le=10_000)  # a batch's answer must stay well under 4 MiB
    max_in_flight: int = Field(1000, ge=1)
    max_metadata_entries: int = Field(64, ge=0)
    max_error_bytes: int = Field(4096, ge=64)
    max_queues: int = Field(
        10_000, ge=1, description="queues that may exist; a request making one more is refused"
    )
    max_schedules: int = Field(
        10_000, ge=1, description="schedules that may exist; CreateSchedule past it is refused"
    )

    sweep_interval_seconds: float = Field(1.0, gt=0, description="safety sweep when no signal arrives")
    queue_idle_seconds: float = Field(
        3600.0, ge=120, description="a queue holding no job this long is dropped from the registry"
    )
    redis_timeout_seconds: float = Field(3.0, gt=0, description="connect and command timeout")
    default_durability: Literal["applied", "fsynced", "replicated"] = Field(
        "applied", description="when writes that leave `durability` unset are acknowledged"
    )
    replicas_to_wait: int = Field(
        1, ge=1, le=16, description="how many replicas must confirm a DURABILITY_REPLICATED write"
    )
    replication_timeout_seconds: float = Field(
        2.0, gt=0, description="how long a replicated write waits for its replicas to confirm it"
    )
    fsync_timeout_seconds: float = Field(
        2.0, gt=0, description="how long a fsynced write waits for Redis to confirm it on disk"
    )
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    subscribe_timeout_seconds: float = Field(
        30.0, gt=0, description="how long a new Lease stream may take to send its subscription"
    )

    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve Prometheus metrics over HTTP on this port (with --processes N, process i "
        "on this port + i); unset: no metrics",
    )
    metrics_interval_seconds: float = Field(
        5.0, gt=0, description="how often the per-queue gauges are read from Redis"
    )
    http_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve the service over HTTP/JSON on this port (docs/http.md); unset: gRPC only",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="export a trace span per RPC over OTLP/gRPC to this URL (http://collector:4317); "
        "unset: OTEL_EXPORTER_OTLP_ENDPOINT if set, else no tracing",
    )
    webhooks_file: Path | None = Field(
        None,
        description="a TOML file of [[webhook]] tables, stored at start (docs/monitoring.md); "
        "unset: webhooks only by RPC",
    )
    webhook_interval_seconds: float = Field(
        2.0, gt=0, description="how often each server looks for webhook events to deliver"
    )

    @field_validator("processes")
    @classmethod
    def _processes_in_range(cls, value: int | str) -> int | str:
        if value != "auto" and not 1 <= int(value) <= MAX_PROCESSES:
            raise ValueError(f"must be auto or 1 to {MAX_PROCESSES}")
        return value

    def process_count(self) -> int:
        """How many server processes `processes` asks for on this machine."""
        return os.cpu_count() or 1 if self.processes == "auto" else int(self.processes)

    log_level: str = "INFO"
    #: text, or JSON objects (with the job's fields on lines about a job): jobqueue/logs.py.
    log_format: LogFormat = "text"
