"""The `jobq` command line: one module per group of commands."""

from __future__ import annotations

import click

from jobqueue_cli import (
    bench,
    certs,
    dead,
    dev,
    load,
    producer,
    queues,
    schedules,
    serve,
    tokens,
    webhooks,
    worker,
)


@click.group()
def main() -> None:
    """jobqueue: a job queue as a gRPC service over Redis."""


for module in (serve, worker, dev, producer, queues, schedules, dead, tokens, webhooks, certs, load, bench):
    for command in module.COMMANDS:
        main.add_command(command)
