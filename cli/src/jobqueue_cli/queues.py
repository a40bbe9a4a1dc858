"""`jobq pause | resume`: stop and restart delivery from a queue, on every server."""

from __future__ import annotations

from collections.abc import Callable

import click

from jobqueue import Client
from jobqueue_cli.producer_io import Conn, client_options, reported_errors


@click.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@client_options
def pause(conn: Conn, queues: tuple[str, ...]) -> None:
    """Stop delivery from QUEUEs: nothing is leased until `jobq resume`; enqueues still work
    and running jobs finish."""
    _apply(conn, queues, "paused", lambda client, queue: client.pause_queue(queue))


@click.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@client_options
def resume(conn: Conn, queues: tuple[str, ...]) -> None:
    """Let paused QUEUEs' jobs be leased again."""
    _apply(conn, queues, "resumed", lambda client, queue: client.resume_queue(queue))


def _apply(conn: Conn, queues: tuple[str, ...], done: str, call: Callable[[Client, str], bool]) -> None:
    results = []
    with reported_errors(conn), conn.client() as client:
        for queue in queues:
            changed = call(client, queue)
            results.append({"queue": queue, "changed": changed})
            if not conn.as_json:
                click.echo(f"{done} {queue}" if changed else f"{queue} was already {done}")
    if conn.as_json:
        conn.emit({"results": results})


COMMANDS = [pause, resume]
