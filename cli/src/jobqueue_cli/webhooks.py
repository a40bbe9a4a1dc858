"""`jobq webhook create | list | delete`: failure alerts, managed with an admin token for every queue."""

from __future__ import annotations

from datetime import timedelta

import click
from rich import box
from rich.table import Table

from jobqueue import WebhookInfo
from jobqueue_cli.producer_io import (
    Conn,
    client_options,
    human_duration,
    jsonable,
    reported_errors,
    shown,
    stdout_console,
)


@click.group()
def webhook() -> None:
    """Webhooks the servers POST to when jobs die or queues need attention (docs/monitoring.md)."""


@webhook.command("create")
@click.argument("url")
@click.option("--queue", help="Only this queue's events; unset: every queue.")
@click.option(
    "--oldest-age",
    type=click.FloatRange(min=1),
    help="Also alert when a queue's oldest ready job waited more seconds than this.",
)
@click.option(
    "--dead-jobs",
    type=click.IntRange(min=0),
    default=0,
    help="Also alert when a queue holds this many dead jobs.",
)
@click.option(
    "--allow-private", is_flag=True, help="Allow a private or loopback address (an internal service)."
)
@client_options
def webhook_create(
    conn: Conn, url: str, queue: str | None, oldest_age: float | None, dead_jobs: int, allow_private: bool
) -> None:
    """Have the servers POST alerts to URL; prints the signing secret (shown this once)."""
    with reported_errors(conn), conn.client() as client:
        made = client.create_webhook(
            url,
            queue=queue,
            oldest_job_age=timedelta(seconds=oldest_age) if oldest_age else None,
            dead_jobs=dead_jobs,
            allow_private_network=allow_private,
        )
    if conn.as_json:
        conn.emit({"secret": made.secret, "info": jsonable(made.info)})
        return
    click.echo(made.secret)
    click.echo(f"id {made.info.webhook_id}, for {made.info.queue or 'every queue'}", err=True)


@webhook.command("list")
@client_options
def webhook_list(conn: Conn) -> None:
    """List every webhook (never their secrets)."""
    with reported_errors(conn), conn.client() as client:
        hooks = client.list_webhooks()
    if conn.as_json:
        conn.emit({"webhooks": [jsonable(h) for h in hooks]})
        return
    stdout_console().print(_table(hooks))


def _table(hooks: list[WebhookInfo]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(hooks)} webhooks")
    for column in ("id", "url", "queue", "alerts", "created"):
        table.add_column(column)
    for info in hooks:
        alerts = ["job dead"]
        if info.oldest_job_age is not None:
            alerts.append(f"oldest job over {human_duration(info.oldest_job_age.total_seconds())}")
        if info.dead_jobs:
            alerts.append(f"{info.dead_jobs}+ dead jobs")
        table.add_row(
            info.webhook_id,
            shown(info.url),
            shown(info.queue or "(every queue)"),
            ", ".join(alerts),
            info.created_at.isoformat(timespec="seconds"),
        )
    return table


@webhook.command("delete")
@click.argument("webhook_ids", nargs=-1, required=True, metavar="WEBHOOK_ID...")
@client_options
def webhook_delete(conn: Conn, webhook_ids: tuple[str, ...]) -> None:
    """Delete webhooks: no delivery to them starts after this."""
    with reported_errors(conn), conn.client() as client:
        for webhook_id in webhook_ids:
            client.delete_webhook(webhook_id)
            if not conn.as_json:
                click.echo(f"deleted {webhook_id}")
    if conn.as_json:
        conn.emit({"deleted": list(webhook_ids)})


COMMANDS = [webhook]
