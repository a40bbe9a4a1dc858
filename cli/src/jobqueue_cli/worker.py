"""`jobq worker`: run the reference worker (email and image handlers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pydantic import ValidationError

_PATH = click.Path(path_type=Path)


@click.command()
@click.option("--target", help="The server's host:port [env JOBQ_TARGET; default localhost:50051].")
@click.option("--queues", help="Comma list of emails, images [env JOBQ_QUEUES; default both].")
@click.option("--concurrency", type=int, help="Jobs run at once [env JOBQ_CONCURRENCY; default 8].")
@click.option(
    "--grace-seconds",
    type=float,
    help="On SIGTERM, how long running jobs may finish [env JOBQ_GRACE_SECONDS; default 30].",
)
@click.option("--worker-id", help="Shown on the jobs it holds [env JOBQ_WORKER_ID; default host:pid:random].")
@click.option("--smtp-host", help="SMTP server [env JOBQ_SMTP_HOST; default localhost].")
@click.option("--smtp-port", type=int, help="[env JOBQ_SMTP_PORT; default 25, 587 or 465 by security].")
@click.option(
    "--smtp-security",
    type=click.Choice(["none", "starttls", "tls"]),
    help="Clear text, STARTTLS or implicit TLS [env JOBQ_SMTP_SECURITY; default starttls].",
)
@click.option("--smtp-username", help="[env JOBQ_SMTP_USERNAME].")
@click.option("--smtp-password", help="Prefer the env var JOBQ_SMTP_PASSWORD: flags are visible in ps.")
@click.option("--smtp-from", help="From address when a payload has none [env JOBQ_SMTP_FROM].")
@click.option(
    "--smtp-validate-certs/--no-smtp-validate-certs",
    default=None,
    help="Verify the SMTP server's certificate [env JOBQ_SMTP_VALIDATE_CERTS; default on].",
)
@click.option("--smtp-cafile", type=_PATH, help="PEM CA bundle for the SMTP server [env JOBQ_SMTP_CAFILE].")
@click.option(
    "--image-output-dir",
    type=_PATH,
    help="Where image outputs go [env JOBQ_IMAGE_OUTPUT_DIR; default .jobq-data/images].",
)
@click.option(
    "--image-input-dir",
    "image_input_dirs",
    type=_PATH,
    multiple=True,
    help="A folder local imageUrl paths may read; repeatable [env JOBQ_IMAGE_INPUT_DIRS, comma list].",
)
@click.option(
    "--allow-private-networks",
    "image_allow_private_networks",
    is_flag=True,
    default=None,
    help="Let image URLs reach private and loopback addresses [env JOBQ_IMAGE_ALLOW_PRIVATE_NETWORKS].",
)
@click.option(
    "--image-max-download-bytes",
    type=int,
    help="Largest image accepted [env JOBQ_IMAGE_MAX_DOWNLOAD_BYTES; default 20 MiB].",
)
@click.option(
    "--image-download-timeout",
    "image_download_timeout_seconds",
    type=float,
    help="Deadline for one download, in seconds [env JOBQ_IMAGE_DOWNLOAD_TIMEOUT_SECONDS; default 10].",
)
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR [env JOBQ_LOG_LEVEL].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as text, or as JSON objects with job_id, queue, attempt and worker_id on job lines "
    "[env JOBQ_LOG_FORMAT; default text].",
)
@click.option(
    "--token", help="API token (worker role) [env JOBQ_TOKEN]; prefer the env var: flags show in ps."
)
@click.option(
    "--tls-ca", type=_PATH, help="PEM CA of the server's certificate; implies TLS [env JOBQ_TLS_CA]."
)
@click.option(
    "--tls-client-cert", type=_PATH, help="PEM client certificate for mTLS [env JOBQ_TLS_CLIENT_CERT]."
)
@click.option("--tls-client-key", type=_PATH, help="PEM key of --tls-client-cert [env JOBQ_TLS_CLIENT_KEY].")
def worker(**flags: Any) -> None:
    """Run the reference worker: sends emails over SMTP and processes images.

    SIGTERM or Ctrl-C lets running jobs finish within the grace period; a second one stops at once.
    """
    from pydantic import ValidationError

    from jobqueue.errors import PermissionDenied, Unauthenticated
    from jobqueue_worker.config import WorkerSettings
    from jobqueue_worker.runner import configure_logging, run

    # Unset flags (None, or () for a repeatable one) leave the environment's value in place.
    given = {name: value for name, value in flags.items() if value is not None and value != ()}
    try:
        settings = WorkerSettings(**given)
    except ValidationError as error:
        raise click.UsageError(_describe(error)) from error
    configure_logging(settings.log_level, settings.log_format)
    try:
        run(settings)
    except (Unauthenticated, PermissionDenied) as error:  # would be refused again: say so and stop
        raise click.ClickException(
            f"the server refused the worker's credentials: {error.reason} {error}"
        ) from error


def _describe(error: ValidationError) -> str:
    """The bad settings on one line, e.g. `queues: no handler for reports; ...`."""
    return "; ".join(_describe_one(".".join(map(str, e["loc"])), e["msg"]) for e in error.errors())


def _describe_one(setting: str, message: str) -> str:
    message = message.removeprefix("Value error, ")  # pydantic's prefix for our validators' errors
    return message if message.startswith(setting) else f"{setting}: {message}"


COMMANDS = [worker]
