"""`jobq dead list | retry`: the dead-letter queue from a shell."""

from __future__ import annotations

import itertools

import click
from rich import box
from rich.table import Table

from jobqueue import JobInfo, JobState
from jobqueue_cli.producer_io import (
    Conn,
    client_options,
    for_each,
    jsonable,
    reported_errors,
    shown,
    stdout_console,
)

LAST_ERROR_CHARS = 80


@click.group()
def dead() -> None:
    """Dead jobs: those that used up their attempts or failed for good."""


@dead.command("list")
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most jobs to show.")
@client_options
def dead_list(conn: Conn, queue: str, limit: int) -> None:
    """List QUEUE's dead jobs, newest first, with their last error."""
    with reported_errors(conn), conn.client() as client:
        jobs = list(itertools.islice(client.list_jobs(queue, JobState.DEAD), limit))
        total = client.stats(queue)[0].dead if jobs else 0
    if conn.as_json:
        conn.emit({"queue": queue, "total": total, "jobs": [jsonable(job) for job in jobs]})
        return
    stdout_console().print(_table(queue, jobs, total))


def _table(queue: str, jobs: list[JobInfo], total: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(jobs)} of {total} dead jobs in {queue}")
    for column in ("job id", "attempts", "finished", "last error"):
        table.add_column(column)
    for job in jobs:
        error = job.last_error.splitlines()[0] if job.last_error else ""
        finished = job.finish_time.isoformat(timespec="seconds") if job.finish_time else ""
        table.add_row(job.id, f"{job.attempts}/{job.max_attempts}", finished, shown(error[:LAST_ERROR_CHARS]))
    return table


@dead.command("retry")
@click.argument("job_ids", nargs=-1, metavar="[JOB_ID...]")
@click.option("--all", "all_of", metavar="QUEUE", help="Retry every dead job of QUEUE.")
@client_options
def dead_retry(conn: Conn, job_ids: tuple[str, ...], all_of: str | None) -> None:
    """Send dead jobs back to their queue, attempts reset: the ids given, or --all QUEUE."""
    if bool(job_ids) == bool(all_of):
        raise click.UsageError("give job ids, or --all QUEUE")
    if all_of:
        with reported_errors(conn), conn.client() as client:
            # Listed first, then retried: each retry moves a job out of the list being read.
            job_ids = tuple(job.id for job in client.list_jobs(all_of, JobState.DEAD))
    for_each(conn, job_ids, "requeued", lambda client, job_id: client.retry(job_id))


COMMANDS: list[click.Command] = [dead]
