"""`jobq enqueue | status | stats | cancel | retry`: the producer API from a shell.

The options and output every command shares live in `producer_io`.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from jobqueue import Client, JobState
from jobqueue.errors import InvalidArgument, Unavailable
from jobqueue_cli.producer_io import (
    Conn,
    client_options,
    error_line,
    for_each,
    job_panel,
    parse_metadata,
    parse_object,
    stats_table,
    stdout_console,
)

# Jobs per EnqueueBatch call for --file: the server's default batch limit.
FILE_CHUNK = 1000
# Keys that make a --file line a job rather than a bare payload (see `enqueue`).
_JOB_KEYS = frozenset(
    {"queue", "payload", "priority", "delay", "max_attempts", "idempotency_key", "metadata"}
)

# -- enqueue -----------------------------------------------------------------------------------


@click.command()
@click.argument("queue", required=False)
@click.argument("payload", required=False, metavar="[JSON]")
@click.option("--priority", type=click.Choice(["low", "normal", "high"]), help="Default: normal.")
@click.option("--delay", type=click.FloatRange(min=0), help="Seconds to wait before the job may run.")
@click.option("--max-attempts", type=click.IntRange(min=1), help="Deliveries before the job is dead.")
@click.option(
    "--execution-timeout", type=click.FloatRange(min=1), help="Seconds an attempt may run before it stops."
)
@click.option(
    "--start-within",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to start in, or it is cancelled.",
)
@click.option("--idempotency-key", help="A second enqueue with this key returns the first job.")
@click.option("--unique-key", help="While a job with this key is pending or running, it is returned instead.")
@click.option("--metadata", "metadata_pairs", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@click.option("--group-key", help="The job's group (a customer...): groups are served in turn.")
@click.option("--partition-key", help="On a partitioned queue: jobs with one key run in their order.")
@click.option(
    "--depends-on",
    multiple=True,
    metavar="JOB_ID",
    help="A job that must complete first: the job waits until then (repeatable).",
)
@click.option(
    "--on-dependency-failure",
    type=click.Choice(["cancel", "dead_letter", "run_anyway"]),
    help="When a job it depends on fails. Default: cancel.",
)
@click.option("--file", "jobs_file", type=click.File("r"), help="JSON lines, one job each ('-': stdin).")
@client_options
def enqueue(
    conn: Conn, queue: str | None, payload: str | None, jobs_file: IO[str] | None, **options: Any
) -> None:
    """Add a job to QUEUE; JSON is its payload, a JSON object ('-' reads it from stdin).

    \b
    With --file, each line is a job, in one of two forms:
      {"queue": "emails", "payload": {...}, "priority": "high", "delay": 5, ...}
      {...}                   a bare payload for QUEUE
    A line is a job when it has "queue" or "payload" and only the keys queue, payload,
    priority, delay, max_attempts, idempotency_key and metadata. The other options are
    defaults for every line. Jobs go in batches of 1,000, each batch all-or-nothing.

    \b
    Examples:
      jobq enqueue emails '{"to":"user@example.com","subject":"Welcome!","body":"Hi"}'
      jobq enqueue reports '{"month":"2026-11"}' --depends-on exports:01J...   # waits for it
    """
    defaults = _spec_defaults(options)
    if jobs_file is not None:
        if payload is not None or options["idempotency_key"] or options["unique_key"]:
            raise click.UsageError(
                "--file takes neither a JSON argument nor --idempotency-key or --unique-key"
            )
        _enqueue_file(conn, queue, jobs_file, defaults)
        return
    if queue is None:
        raise click.UsageError("give QUEUE (and a JSON payload), or --file")
    text = sys.stdin.read() if payload == "-" else payload
    body = parse_object(text, "payload") if text is not None else None
    with conn.client() as client:
        result = client.enqueue(
            queue,
            body,
            idempotency_key=options["idempotency_key"],
            unique_key=options["unique_key"],
            **defaults,
        )
    if conn.as_json:
        conn.emit(result)
    else:
        note = (
            " (duplicate: its idempotency or unique key matched an earlier job)" if result.duplicate else ""
        )
        stdout_console().print(f"[green]enqueued[/] [bold]{result.job_id}[/]{note}", highlight=False)


def _within(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)


def _spec_defaults(options: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "priority": options["priority"],
        "delay": options["delay"],
        "max_attempts": options["max_attempts"],
        "execution_timeout": options["execution_timeout"],
        "start_deadline": (
            datetime.now(UTC) + timedelta(seconds=options["start_within"])
            if options["start_within"]
            else None
        ),
        "metadata": parse_metadata(options["metadata_pairs"]) or None,
        "depends_on": list(options["depends_on"]) or None,
        "group_key": options["group_key"],
        "partition_key": options["partition_key"],
        "on_dependency_failure": options["on_dependency_failure"],
    }
    return {key: value for key, value in defaults.items() if value is not None}


def _read_jobs(
    lines: IO[str], queue: str | None, defaults: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every job of a --file (a JobSpec), with its line number; a bad line stops the command
    before any call."""
    specs: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        item = parse_object(line, where)
        is_job = bool(item.keys() & {"queue", "payload"}) and item.keys() <= _JOB_KEYS
        job = {**defaults, **item} if is_job else {**defaults, "payload": item}
        job.setdefault("queue", queue)
        if not job["queue"]:
            raise InvalidArgument(f"{where}: names no queue, and QUEUE was not given", field=where)
        _check_types(job, where)
        specs.append(job)
        numbers.append(number)
    return specs, numbers


# The JSON type of each job key: the client checks values, but not always their types.
_JOB_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "queue": (str,), "payload": (dict, type(None)), "priority": (str,), "delay": (int, float),
    "max_attempts": (int,), "idempotency_key": (str,), "metadata": (dict,),
}  # fmt: skip


def _check_types(job: dict[str, Any], where: str) -> None:
    for key, value in job.items():
        wanted = _JOB_KEY_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, wanted):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in wanted)
            raise InvalidArgument(f"{where}: {key} must be {names}, got {value!r}", field=where)
    metadata = job.get("metadata") or {}
    if not all(isinstance(value, str) for value in metadata.values()):
        raise InvalidArgument(f"{where}: metadata values must be strings", field=where)


def _enqueue_file(conn: Conn, queue: str | None, lines: IO[str], defaults: dict[str, Any]) -> None:
    specs, numbers = _read_jobs(lines, queue, defaults)
    results = []
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("enqueue"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=conn.as_json or not console.is_terminal, transient=True,
    )  # fmt: skip
    with progress, conn.client() as client:
        task = progress.add_task("enqueue", total=len(specs))
        for start in range(0, len(specs), FILE_CHUNK):
            chunk = specs[start : start + FILE_CHUNK]
            try:
                results += client.enqueue_many(chunk)
            except InvalidArgument as error:
                raise _at_line(error, numbers[start:], len(results)) from error
            progress.advance(task, len(chunk))
    duplicates = sum(result.duplicate for result in results)
    if conn.as_json:
        conn.emit({"enqueued": len(results), "duplicates": duplicates, "jobs": results})
    else:
        stdout_console().print(f"[green]enqueued[/] {len(results)} jobs ({duplicates} duplicates)")


def _at_line(error: InvalidArgument, numbers: Sequence[int], sent: int) -> InvalidArgument:
    """Names the file's line instead of the batch's ``requests[i]``, and says what was already sent."""
    found = re.match(r"requests\[(\d+)\]\.?", error.field or "")
    if found is None or int(found[1]) >= len(numbers):
        return error
    line = f"line {numbers[int(found[1])]}"
    key = (error.field or "")[found.end() :]
    message = re.sub(r"^requests\[\d+\]\S*: ", "", error.message)
    if key and not message.startswith(key):
        message = f"{key}: {message}"
    done = f"the {sent} jobs before it were enqueued" if sent else "no job was enqueued"
    return InvalidArgument(f"{line}: {message} ({done})", field=line)


# -- inspect -----------------------------------------------------------------------------------


@click.command()
@click.argument("job_id")
@client_options
def status(conn: Conn, job_id: str) -> None:
    """Show a job: state, attempts, times, payload, result and errors."""
    with conn.client() as client:
        job = client.get(job_id)
    if conn.as_json:
        conn.emit(job)
    else:
        stdout_console().print(job_panel(job))


@click.command()
@click.argument("job_id")
@client_options
def watch(conn: Conn, job_id: str) -> None:
    """Follow a job until it ends: a line at each change of its state or progress (WatchJob);
    exits 0 once it completed, 1 when it ended dead or cancelled."""
    last = None
    with conn.client() as client:
        for job in client.watch(job_id):
            last = job
            if conn.as_json:
                conn.emit(job)
            else:
                progress = (
                    f" {job.progress.percent:g} % {job.progress.message}".rstrip() if job.progress else ""
                )
                click.echo(f"{job.state.value}{progress}")
    if last is not None and last.state is not JobState.COMPLETED:
        sys.exit(1)


@click.command()
@click.argument("queue", required=False)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C (with --json: one line per refresh).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds.")
@client_options
def stats(conn: Conn, queue: str | None, watch: bool, interval: float) -> None:
    """Job counts by state for QUEUE, or for every queue."""
    with conn.client() as client:
        if not watch:
            _show_stats(conn, client, queue)
            return
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends: exit 0
            _watch_stats(conn, client, queue, interval)


def _show_stats(conn: Conn, client: Client, queue: str | None) -> None:
    queues = client.stats(queue)
    if conn.as_json:
        conn.emit({"queues": queues})
    else:
        stdout_console().print(stats_table(queues))


def _watch_stats(conn: Conn, client: Client, queue: str | None, interval: float) -> None:
    if conn.as_json:
        while True:
            _show_stats(conn, client, queue)
            time.sleep(interval)
    with Live(console=stdout_console(), auto_refresh=False) as live:
        while True:
            caption = f"{time.strftime('%H:%M:%S')} · every {interval:g} s · Ctrl-C to stop"
            try:
                live.update(stats_table(client.stats(queue), caption), refresh=True)
            except Unavailable as error:  # keep watching: the server may be restarting
                live.update(f"[red]{error_line(error, conn.target)}[/]\n{caption}", refresh=True)
            time.sleep(interval)


# -- change ------------------------------------------------------------------------------------


@click.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB_ID...")
@client_options
def cancel(conn: Conn, job_ids: tuple[str, ...]) -> None:
    """Stop scheduled or queued jobs from running (a job already running cannot be cancelled)."""
    for_each(conn, job_ids, "cancelled", lambda client, job_id: client.cancel(job_id))


@click.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB_ID...")
@client_options
def retry(conn: Conn, job_ids: tuple[str, ...]) -> None:
    """Send dead or cancelled jobs back to their queue, attempts reset."""
    for_each(conn, job_ids, "requeued", lambda client, job_id: client.retry(job_id))


COMMANDS: list[click.Command] = [enqueue, status, watch, stats, cancel, retry]
