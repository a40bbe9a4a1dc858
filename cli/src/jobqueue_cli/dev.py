"""`jobq dev`: the whole stack in one terminal, for trying jobqueue and developing against it."""

from __future__ import annotations

from pathlib import Path

import click

from jobqueue import eventloop
from jobqueue_cli.devstack import DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, DEFAULT_PORT, DEFAULT_SMTP_PORT


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="gRPC port."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".jobq-data"),
    show_default=True,
    help="Valkey data, image inputs and outputs, received mail.",
)
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_SMTP_PORT,
    show_default=True,
    help="SMTP sink port.",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    help="HTTP/JSON port (http://127.0.0.1:PORT/v1/).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_METRICS_PORT,
    show_default=True,
    help="Prometheus metrics port (http://127.0.0.1:PORT/metrics).",
)
@click.option(
    "--secure",
    is_flag=True,
    help="TLS with a local CA (DATA_DIR/tls) and API tokens (DATA_DIR/admin.token), as in production.",
)
def dev(port: int, data_dir: Path, smtp_port: int, http_port: int, metrics_port: int, secure: bool) -> None:
    """Run Valkey, the server, the reference worker and an SMTP sink, all on 127.0.0.1.

    \b
    DATA_DIR/valkey   Valkey's data (AOF) and log: jobs survive a restart
    DATA_DIR/mail     every message the worker sends, as an .eml file
    DATA_DIR/inbox    image inputs; a sample.png is written there
    DATA_DIR/images   image outputs
    DATA_DIR/tls      with --secure: the local CA (ca.pem) and the server's certificate

    It prints the commands to enqueue the tutorial's two jobs. Ctrl-C (or SIGTERM) stops the
    worker, then the server, then Valkey; a second Ctrl-C kills what is still stopping.
    """
    from jobqueue_cli.devstack.output import Output
    from jobqueue_cli.devstack.stack import DevConfig, DevStack

    config = DevConfig(
        port=port,
        smtp_port=smtp_port,
        http_port=http_port,
        metrics_port=metrics_port,
        data_dir=data_dir,
        secure=secure,
    )
    stack = DevStack(config, Output())
    raise click.exceptions.Exit(eventloop.run(stack.run()))


COMMANDS: list[click.Command] = [dev]
