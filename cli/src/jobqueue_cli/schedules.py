"""`jobq schedule create | update | list | get | pause | resume | delete`: recurring jobs, managed
with an admin token for every queue (docs/schedules.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.table import Table

from jobqueue import Schedule
from jobqueue_cli.producer_io import (
    Conn,
    client_options,
    jsonable,
    parse_metadata,
    parse_object,
    reported_errors,
    shown,
    stdout_console,
    toggle_each,
)


@click.group()
def schedule() -> None:
    """Recurring jobs: one job per tick of a cron expression or an interval, on any server."""


def _definition_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of create and update, which take a whole definition."""
    options = [
        click.argument("name"),
        click.argument("queue"),
        click.argument("payload", required=False, metavar="[JSON]"),
        click.option("--cron", help="5 fields (minute hour day month weekday), or 6 with seconds first."),
        click.option(
            "--every", type=click.FloatRange(min=1), help="Seconds between ticks (instead of --cron)."
        ),
        click.option("--tz", "time_zone", help="IANA time zone of --cron, e.g. Europe/Paris. Default: UTC."),
        click.option("--start", type=click.DateTime(), help="No tick before this time (UTC)."),
        click.option("--end", type=click.DateTime(), help="No tick after this time (UTC)."),
        click.option(
            "--catch-up",
            type=click.Choice(["skip", "once", "all"]),
            default="skip",
            show_default=True,
            help="Ticks missed while no server ran: none, one job, or one each.",
        ),
        click.option(
            "--catch-up-limit", type=click.IntRange(0, 1000), default=0, help="For all: most made up."
        ),
        click.option("--priority", type=click.Choice(["low", "normal", "high"]), help="Default: normal."),
        click.option("--max-attempts", type=click.IntRange(min=1), help="Deliveries before a job is dead."),
        click.option("--metadata", "metadata_pairs", multiple=True, metavar="KEY=VALUE", help="Repeatable."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@schedule.command("create")
@_definition_options
@client_options
def schedule_create(conn: Conn, **definition: Any) -> None:
    """Make a job on QUEUE (with payload JSON) at each tick; NAME names the schedule.

    \b
    Examples:
      jobq schedule create nightly-report reports '{"kind":"daily"}' --cron "0 2 * * *" --tz Europe/Paris
      jobq schedule create heartbeat pings --every 30
    """
    with reported_errors(conn), conn.client() as client:
        made = client.create_schedule(**_arguments(definition))
    _show(conn, made, "created")


@schedule.command("update")
@_definition_options
@client_options
def schedule_update(conn: Conn, **definition: Any) -> None:
    """Replace schedule NAME's definition (as for create); it keeps its pause and last run."""
    with reported_errors(conn), conn.client() as client:
        changed = client.update_schedule(**_arguments(definition))
    _show(conn, changed, "updated")


@schedule.command("list")
@client_options
def schedule_list(conn: Conn) -> None:
    """List every schedule with its next and last run."""
    with reported_errors(conn), conn.client() as client:
        schedules = list(client.list_schedules())
    if conn.as_json:
        conn.emit({"schedules": [jsonable(s) for s in schedules]})
        return
    stdout_console().print(_table(schedules))


@schedule.command("get")
@click.argument("name")
@client_options
def schedule_get(conn: Conn, name: str) -> None:
    """Show schedule NAME: its definition, next run, and the job its last tick made."""
    with reported_errors(conn), conn.client() as client:
        found = client.get_schedule(name)
    _show(conn, found, None)


@schedule.command("pause")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@client_options
def schedule_pause(conn: Conn, names: tuple[str, ...]) -> None:
    """Stop schedules' ticks until `jobq schedule resume`."""
    toggle_each(conn, names, "name", "paused", lambda client, name: client.pause_schedule(name))


@schedule.command("resume")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@client_options
def schedule_resume(conn: Conn, names: tuple[str, ...]) -> None:
    """Start paused schedules again from their next tick (missed ticks are not made up)."""
    toggle_each(conn, names, "name", "resumed", lambda client, name: client.resume_schedule(name))


@schedule.command("delete")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@client_options
def schedule_delete(conn: Conn, names: tuple[str, ...]) -> None:
    """Delete schedules; the jobs they made stay."""
    with reported_errors(conn), conn.client() as client:
        for name in names:
            client.delete_schedule(name)
            if not conn.as_json:
                click.echo(f"deleted {name}")
    if conn.as_json:
        conn.emit({"deleted": list(names)})


def _arguments(definition: dict[str, Any]) -> dict[str, Any]:
    """create_schedule's arguments from the command line's."""
    if (definition["cron"] is None) == (definition["every"] is None):
        raise click.UsageError("give exactly one of --cron and --every")
    text = definition["payload"]
    text = sys.stdin.read() if text == "-" else text
    arguments: dict[str, Any] = {
        "name": definition["name"],
        "queue": definition["queue"],
        "payload": parse_object(text, "payload") if text is not None else None,
        "cron": definition["cron"],
        "every": definition["every"],
        "time_zone": definition["time_zone"],
        "start": _utc(definition["start"]),
        "end": _utc(definition["end"]),
        "catch_up": definition["catch_up"],
        "catch_up_limit": definition["catch_up_limit"],
    }
    options = {
        "priority": definition["priority"],
        "max_attempts": definition["max_attempts"],
        "metadata": parse_metadata(definition["metadata_pairs"]) or None,
    }
    arguments.update({key: value for key, value in options.items() if value is not None})
    return arguments


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC (the schedule's own zone applies to cron only)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _when(found: Schedule) -> str:
    if found.cron is not None:
        return found.cron + (f" ({found.time_zone})" if found.time_zone else "")
    assert found.every is not None
    return f"every {found.every.total_seconds():g} s"


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _show(conn: Conn, found: Schedule, done: str | None) -> None:
    if conn.as_json:
        conn.emit(jsonable(found))
        return
    if done is not None:
        click.echo(f"{done} schedule {found.name}: next run {_time(found.next_run_at)}")
        return
    console = stdout_console()
    for label, value in (
        ("name", found.name),
        ("when", _when(found)),
        ("queue", found.queue),
        ("payload", "-" if found.payload is None else str(found.payload)),
        ("catch-up", found.catch_up),
        ("paused", "yes" if found.paused else "no"),
        ("next run", _time(found.next_run_at)),
        ("last run", _time(found.last_run_at)),
        ("last job", found.last_job_id or "-"),
    ):
        console.print(f"[bold]{label:>9}[/] ", shown(value), highlight=False)


def _table(schedules: list[Schedule]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(schedules)} schedules")
    for column in ("name", "when", "queue", "next run", "last run", "last job"):
        table.add_column(column)
    for found in schedules:
        table.add_row(
            shown(found.name),
            shown(_when(found) + (" (paused)" if found.paused else "")),
            shown(found.queue),
            _time(found.next_run_at),
            _time(found.last_run_at),
            shown(found.last_job_id or "-"),
        )
    return table


COMMANDS = [schedule]
