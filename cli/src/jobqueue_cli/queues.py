"""`jobq create-queue | pause | resume | limit`: declare a queue's partitions; stop, restart and
bound delivery from a queue, on every server."""

from __future__ import annotations

from typing import Any

import click

from jobqueue_cli.producer_io import Conn, client_options, reported_errors, toggle_each


@click.command("create-queue")
@click.argument("queue")
@click.option(
    "--partitions",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Partitions to spread the queue over (a cluster's nodes); more than it has adds some.",
)
@client_options
def create_queue(conn: Conn, queue: str, partitions: int) -> None:
    """Declare QUEUE with --partitions partitions, or add partitions to it. A partitioned queue
    is still one queue to producers, workers and every command (docs/scaling.md)."""
    with reported_errors(conn), conn.client() as client:
        made = client.create_queue(queue, partitions=partitions)
    if conn.as_json:
        conn.emit({"queue": made.queue, "partitions": made.partitions, "changed": made.changed})
    else:
        state = "now has" if made.changed else "already has"
        click.echo(f"{made.queue} {state} {made.partitions} partition{'s' if made.partitions != 1 else ''}")


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
@click.option(
    "--group-rate", type=click.FloatRange(0, 1_000_000), default=0, help="The same as --rate, per group."
)
@click.option("--group-burst", type=click.IntRange(0, 1_000_000), default=0, help="--burst, per group.")
@click.option(
    "--group-max-active", type=click.IntRange(0, 1_000_000), default=0, help="--max-active, per group."
)
@client_options
def limit(conn: Conn, queue: str, **limits: Any) -> None:
    """Bound QUEUE on every server: --rate jobs a second (--burst at once after a pause) and
    --max-active running at once; the --group-* options bound each group of it (the jobs
    enqueued with one group key, e.g. one customer's) the same way. Held-back jobs stay queued.
    With no option, removes them."""
    chosen = {
        "rate_per_second": limits["rate"],
        "burst": limits["burst"],
        "max_active": limits["max_active"],
        "group_rate_per_second": limits["group_rate"],
        "group_burst": limits["group_burst"],
        "group_max_active": limits["group_max_active"],
    }
    with reported_errors(conn), conn.client() as client:
        client.set_queue_limits(queue, **chosen)
    if conn.as_json:
        conn.emit({"queue": queue, **chosen})
    elif any(chosen.values()):
        described = [_described(chosen, ""), _described(chosen, "group_", " per group")]
        click.echo(f"limited {queue}: {'; '.join(d for d in described if d)}")
    else:
        click.echo(f"{queue} has no limits")


def _described(limits: dict[str, Any], kind: str, suffix: str = "") -> str:
    rate, burst, active = (limits[f"{kind}{name}"] for name in ("rate_per_second", "burst", "max_active"))
    parts = [f"{rate:g}/s (burst {burst or max(1, round(rate))})"] if rate else []
    parts += [f"{active} active at most"] if active else []
    return f"{', '.join(parts)}{suffix}" if parts else ""


COMMANDS = [create_queue, pause, resume, limit]
