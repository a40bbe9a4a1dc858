"""`jobq pause | resume | limit`: stop, restart and bound delivery from a queue, on every server."""

from __future__ import annotations

import click

from jobqueue_cli.producer_io import Conn, client_options, reported_errors, toggle_each


@click.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@client_options
def pause(conn: Conn, queues: tuple[str, ...]) -> None:
    """Stop delivery from QUEUEs: nothing is leased until `jobq resume`; enqueues still work
    and running jobs finish."""
    toggle_each(conn, queues, "queue", "paused", lambda client, queue: client.pause_queue(queue))


@click.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@client_options
def resume(conn: Conn, queues: tuple[str, ...]) -> None:
    """Let paused QUEUEs' jobs be leased again."""
    toggle_each(conn, queues, "queue", "resumed", lambda client, queue: client.resume_queue(queue))


@click.command()
@click.argument("queue")
@click.option(
    "--rate", type=click.FloatRange(0, 1_000_000), default=0, help="Jobs leased per second at most."
)
@click.option("--burst", type=click.IntRange(0, 1_000_000), default=0, help="Jobs at once after a pause.")
@click.option("--max-active", type=click.IntRange(0, 1_000_000), default=0, help="Jobs running at once.")
@client_options
def limit(conn: Conn, queue: str, rate: float, burst: int, max_active: int) -> None:
    """Bound QUEUE on every server: --rate jobs a second (--burst at once after a pause) and
    --max-active running at once. Held-back jobs stay queued. With no option, removes them."""
    with reported_errors(conn), conn.client() as client:
        client.set_queue_limits(queue, rate_per_second=rate, burst=burst, max_active=max_active)
    if conn.as_json:
        conn.emit({"queue": queue, "rate_per_second": rate, "burst": burst, "max_active": max_active})
    elif rate or max_active:
        parts = [f"{rate:g}/s (burst {burst or max(1, round(rate))})"] if rate else []
        parts += [f"{max_active} active at most"] if max_active else []
        click.echo(f"limited {queue}: {', '.join(parts)}")
    else:
        click.echo(f"{queue} has no limits")


COMMANDS = [pause, resume, limit]
