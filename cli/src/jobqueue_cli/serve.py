"""`jobq serve`: run the gRPC server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from jobqueue import eventloop, logs
from jobqueue_server.config import ServerSettings


@click.command()
@click.option(
    "--host",
    help="Address to listen on [env JOBQ_HOST; default 127.0.0.1]. Any other address needs --auth, "
    "--tls-client-ca or --insecure.",
)
@click.option("--port", type=int, help="Port to listen on [env JOBQ_PORT; default 50051].")
@click.option(
    "--processes",
    help="Server processes sharing the port (SO_REUSEPORT), each on a core: a number, or auto for "
    "one per core [env JOBQ_PROCESSES; default 1].",
)
@click.option("--redis-url", help="redis:// or rediss:// URL [env JOBQ_REDIS_URL]; unset: embedded Valkey.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Embedded Valkey data folder [env JOBQ_DATA_DIR; default .jobq-data].",
)
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR [env JOBQ_LOG_LEVEL].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as text, or as JSON objects with job_id, queue, attempt and worker_id on job lines "
    "[env JOBQ_LOG_FORMAT; default text].",
)
@click.option(
    "--durability",
    "default_durability",
    type=click.Choice(["applied", "fsynced", "replicated"]),
    help="When writes that leave durability unset are acknowledged: applied in Redis, "
    "fsynced to its append-only file, or replicated to its replicas "
    "[env JOBQ_DEFAULT_DURABILITY; default applied].",
)
@click.option(
    "--replicas-to-wait",
    type=int,
    help="Replicas that must confirm a replicated write [env JOBQ_REPLICAS_TO_WAIT; default 1].",
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require an API token on every call [env JOBQ_AUTH]. With no token in the store, an admin "
    "token is written to --admin-token-file at start.",
)
@click.option(
    "--admin-token-file",
    type=click.Path(path_type=Path),
    help="Where --auth writes the first admin token [env JOBQ_ADMIN_TOKEN_FILE; default "
    "<data-dir>/admin.token].",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path),
    help="PEM certificate chain: serve TLS [env JOBQ_TLS_CERT].",
)
@click.option(
    "--tls-key", type=click.Path(path_type=Path), help="PEM private key of --tls-cert [env JOBQ_TLS_KEY]."
)
@click.option(
    "--tls-client-ca",
    type=click.Path(path_type=Path),
    help="PEM CA bundle: require client certificates it signed (mTLS) [env JOBQ_TLS_CLIENT_CA]. "
    "SIGHUP reads the three TLS files again.",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Allow a non-loopback --host without --auth or --tls-client-ca [env JOBQ_INSECURE].",
)
@click.option(
    "--http-port",
    type=int,
    help="Serve the service as HTTP/JSON on this port (docs/http.md) [env JOBQ_HTTP_PORT; default off].",
)
@click.option(
    "--metrics-port",
    type=int,
    help="Serve Prometheus metrics on http://HOST:PORT/metrics; with --processes N, process i on "
    "PORT + i [env JOBQ_METRICS_PORT; default off]. docs/monitoring.md.",
)
@click.option(
    "--webhooks-file",
    type=click.Path(path_type=Path),
    help="TOML file of [[webhook]] tables to keep stored (docs/monitoring.md) [env JOBQ_WEBHOOKS_FILE].",
)
@click.option(
    "--otlp-endpoint",
    help="Export a trace span per RPC over OTLP/gRPC to this URL, e.g. http://localhost:4317 "
    "[env JOBQ_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; default off]. docs/monitoring.md.",
)
@click.option(
    "--reflection/--no-reflection",
    default=None,
    help="Serve gRPC reflection: the contract, no data [env JOBQ_REFLECTION; default on].",
)
def serve(**flags: Any) -> None:
    """Run the gRPC server (with an embedded Valkey unless --redis-url is given)."""
    from jobqueue_server.errors import DurabilityUnavailable
    from jobqueue_server.runtime.app import SettingsError
    from jobqueue_server.runtime.serve import serve as run
    from jobqueue_server.runtime.tls import TlsSettingsError

    settings = ServerSettings(**{k: v for k, v in flags.items() if v is not None})
    logs.configure(settings.log_level, settings.log_format)
    try:
        eventloop.run(run(settings))
    except DurabilityUnavailable as error:
        raise click.ClickException(f"cannot start: {error.message}") from error
    except (SettingsError, TlsSettingsError) as error:
        raise click.ClickException(f"cannot start: {error}") from error


COMMANDS = [serve]
