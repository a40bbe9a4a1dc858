"""The reference worker process: the email and image handlers on a `jobqueue.Worker`.

::

    settings = WorkerSettings(target="localhost:50051", smtp_host="mail.example.com")
    run(settings)  # until SIGTERM/SIGINT: running jobs finish within grace_seconds;
                   # a second signal stops at once and the server hands those jobs out again
"""

from __future__ import annotations

import logging
from typing import Any

from jobqueue import AsyncHandler, JobContext, Worker, eventloop, logs, otlp
from jobqueue.logs import LogFormat
from jobqueue_worker.config import EMAIL_QUEUE, IMAGE_QUEUE, WorkerSettings
from jobqueue_worker.handlers.email import EmailSettings, send_email
from jobqueue_worker.handlers.image import ImageSettings, process_image

logger = logging.getLogger(__name__)


def email_handler(settings: EmailSettings) -> AsyncHandler:
    """The `emails` queue's handler: the payload is the message (see handlers.email)."""

    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return await send_email(payload, settings)

    return handle


def image_handler(settings: ImageSettings) -> AsyncHandler:
    """The `images` queue's handler: output files are named after the job id (see handlers.image)."""

    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return await process_image(payload, settings, job_id=ctx.job_id, payload_bytes=ctx.payload_bytes)

    return handle


def handlers(settings: WorkerSettings) -> dict[str, AsyncHandler]:
    """One handler per configured queue; handler settings are built only for queues served."""
    built: dict[str, AsyncHandler] = {}
    if EMAIL_QUEUE in settings.queues:
        email = settings.email_settings()
        logger.info("emails go through %s:%s (%s)", email.host, email.port or "default port", email.security)
        built[EMAIL_QUEUE] = email_handler(email)
    if IMAGE_QUEUE in settings.queues:
        image = settings.image_settings()
        logger.info("images are written to %s", image.output_dir)
        built[IMAGE_QUEUE] = image_handler(image)
    return built


def build_worker(settings: WorkerSettings) -> Worker:
    worker = Worker(
        settings.target,
        list(settings.queues),
        concurrency=settings.concurrency,
        worker_id=settings.worker_id,
        grace_period=settings.grace_seconds,
        token=settings.token.get_secret_value() if settings.token else None,
        tls=settings.tls(),
    )
    for queue, handler in handlers(settings).items():
        worker.add_handler(queue, handler)
    return worker


async def run_async(settings: WorkerSettings) -> None:
    """Runs the worker until SIGTERM or SIGINT (a second one abandons running jobs). With an
    OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT), each job's `process <queue>` span is exported."""
    endpoint = otlp.configured_endpoint(None)
    exporting = otlp.install(endpoint, "jobqueue-worker") if endpoint else None
    try:
        await build_worker(settings).run(install_signal_handlers=True)
    finally:
        if exporting is not None:  # sends the spans still batched
            exporting.shutdown()


def run(settings: WorkerSettings) -> None:
    eventloop.run(run_async(settings))


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    logs.configure(level, log_format)
