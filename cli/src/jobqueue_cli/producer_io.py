"""What the producer and load commands share: the common options, errors, JSON and rich output.

Every such command takes --target (env JOBQ_TARGET), --json, --timeout, and the credentials:
--token and --tls-ca, --tls-client-cert, --tls-client-key (env JOBQ_TOKEN, JOBQ_TLS_*, read by
the client library when a flag is not given). Output is rich text
for people by default and one JSON document on stdout with --json. A failure is one line on
stderr, ``error: REASON message``, and exit status 2 for invalid input, 1 for anything else.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich import box
from rich.console import Console, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jobqueue import Client, JobInfo, QueueLimits, QueueStats, Tls
from jobqueue.errors import InvalidArgument, JobQueueError, Unavailable

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_S = 10.0
EXIT_FAILED = 1
EXIT_INVALID = 2
# The width of text written to a pipe or file (tables take only what they need).
PIPED_WIDTH = 400
# Longer JSON values are shown indented, one key per line.
COMPACT_JSON_CHARS = 60


@dataclass(frozen=True)
class Conn:
    """Where to send calls and how to print: built from the options every command shares."""

    target: str
    as_json: bool
    timeout: float
    token: str | None = None
    tls: Tls | None = None

    def client(self) -> Client:
        return Client(self.target, timeout=self.timeout, token=self.token, tls=self.tls)

    def emit(self, document: object) -> None:
        """Prints one compact JSON document on stdout (a line: --watch prints one per refresh)."""
        click.echo(json.dumps(jsonable(document), ensure_ascii=False))


def error_line(error: JobQueueError, target: str) -> str:
    """``error: REASON field: message``, naming the field when the message does not."""
    message = error.message
    if error.field and not message.startswith(error.field):
        message = f"{error.field}: {message}"
    if isinstance(error, Unavailable) and error.reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        message = f"cannot reach the server at {target} (is `jobq serve` or `jobq dev` running?): {message}"
    return f"error: {error.reason} {' '.join(message.split())}"


def exit_code(error: JobQueueError) -> int:
    return EXIT_INVALID if isinstance(error, InvalidArgument) else EXIT_FAILED


@contextlib.contextmanager
def reported_errors(conn: Conn) -> Iterator[None]:
    """Turns a typed client error into its one stderr line and exit status."""
    try:
        yield
    except JobQueueError as error:
        click.echo(error_line(error, conn.target), err=True)
        raise click.exceptions.Exit(exit_code(error)) from error


def client_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds --target, --json and --timeout; the command receives them as its first argument, a Conn."""

    @functools.wraps(command)
    def wrapper(
        target: str,
        as_json: bool,
        timeout: float,
        token: str | None,
        tls_ca: str | None,
        tls_client_cert: str | None,
        tls_client_key: str | None,
        **kwargs: Any,
    ) -> None:
        conn = Conn(target, as_json, timeout, token, tls_flags(tls_ca, tls_client_cert, tls_client_key))
        with reported_errors(conn):
            command(conn, **kwargs)

    options: list[Callable[[Callable[..., None]], Callable[..., None]]] = [
        click.option(
            "--target", envvar="JOBQ_TARGET", default=DEFAULT_TARGET, show_default=True,
            help="Server address HOST:PORT [env JOBQ_TARGET].",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text."),
        click.option(
            "--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT_S,
            show_default=True, help="Seconds to wait for each call.",
        ),
        *credential_options(),
    ]  # fmt: skip
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def credential_options() -> list[Callable[[Callable[..., None]], Callable[..., None]]]:
    """--token and the TLS files; unset, the client library reads JOBQ_TOKEN and JOBQ_TLS_*."""
    path = click.Path(exists=True, dir_okay=False)
    return [
        click.option("--token", help="API token [env JOBQ_TOKEN]; prefer the env var: flags show in ps."),
        click.option(
            "--tls-ca",
            type=path,
            help="PEM CA that signed the server's certificate; implies TLS [env JOBQ_TLS_CA].",
        ),
        click.option(
            "--tls-client-cert", type=path, help="PEM client certificate for mTLS [env JOBQ_TLS_CLIENT_CERT]."
        ),
        click.option(
            "--tls-client-key", type=path, help="PEM key of --tls-client-cert [env JOBQ_TLS_CLIENT_KEY]."
        ),
    ]


def tls_flags(ca: str | None, cert: str | None, key: str | None) -> Tls | None:
    """The TLS the flags ask for; None leaves it to the environment."""
    if ca is None and cert is None and key is None:
        return None
    return Tls(ca_file=ca, cert_file=cert, key_file=key)


def parse_object(text: str, field: str) -> dict[str, Any]:
    """A JSON object from the command line or a file; InvalidArgument naming `field` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"{field}: not valid JSON: {error}", field=field) from error
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: must be a JSON object, got {type(value).__name__}", field=field)
    return value


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"metadata: expected KEY=VALUE, got {pair!r}", field="metadata")
        metadata[key] = value
    return metadata


# -- rendering ---------------------------------------------------------------------------------

_STATE_STYLES = {"queued": "cyan", "scheduled": "blue", "active": "yellow", "completed": "green",
                 "dead": "red", "cancelled": "dim", "waiting": "magenta"}  # fmt: skip


def jsonable(value: Any) -> Any:
    """Client models as JSON values: times ISO 8601, durations in seconds, bytes base64."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    ago = (datetime.now(UTC) - moment).total_seconds()
    relative = f"in {human_duration(-ago)}" if ago < 0 else f"{human_duration(ago)} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({relative})"


def stdout_console() -> Console:
    """Rich on stdout. Piped output is not cut at 80 columns: queue names and paths stay whole."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def _json(value: object) -> JSON:
    """Highlighted JSON: on one line when short, indented when not."""
    text = json.dumps(value, ensure_ascii=False)
    rendered = JSON(text, indent=None if len(text) <= COMPACT_JSON_CHARS else 2)
    rendered.text.no_wrap, rendered.text.overflow = False, "fold"  # show whole paths, never "…"
    return rendered


# Control characters but newline and tab (ESC sequences drive the terminal: move the cursor,
# rewrite lines, set the title), and the bidirectional overrides that reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(value: str, style: str = "") -> Text:
    """Text from the network shown as itself: never read as rich markup, and its control
    characters written as escapes (``\\x1b``) instead of reaching the terminal."""
    return Text(_UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode(), value), style=style)


# `jobq status` shows the end of a job's log; --json gives all of it.
LOG_LINES_SHOWN = 20


def job_panel(job: JobInfo) -> Panel:
    style = _STATE_STYLES.get(job.state.value, "white")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, RenderableType]] = [
        ("state", Text(job.state.value.upper(), style=f"bold {style}")),
        ("queue", job.queue),
        ("priority", job.priority.value),
        ("attempts", f"{job.attempts} of {job.max_attempts}"),
        ("created", _when(job.create_time)),
        ("scheduled", _when(job.schedule_time)),
        ("started", _when(job.start_time)),
        ("finished", _when(job.finish_time)),
        ("metadata", _json(job.metadata) if job.metadata else "-"),
        ("payload", _json(job.payload) if job.payload else f"{len(job.payload_bytes)} bytes"),
        ("result", _json(job.result) if job.result is not None else "-"),
    ]
    if job.worker_id:
        rows.append(("worker", shown(job.worker_id)))
    if job.idempotency_key:
        rows.append(("idempotency key", shown(job.idempotency_key)))
    if job.execution_timeout is not None:
        rows.append(("timeout", human_duration(job.execution_timeout.total_seconds())))
    if job.start_deadline is not None:
        rows.append(("start by", _when(job.start_deadline)))
    if job.depends_on:
        policy = job.on_dependency_failure.value if job.on_dependency_failure else "cancel"
        rows.append(("depends on", shown("\n".join(job.depends_on) + f"\n(if one fails: {policy})")))
    if job.progress is not None:
        rows.append(("progress", shown(f"{job.progress.percent:g} % {job.progress.message}".rstrip())))
    if job.logs:
        lines = [f"{_when(entry.time)}  {entry.line}" for entry in job.logs[-LOG_LINES_SHOWN:]]
        rows.append((f"log (last {len(lines)})", shown("\n".join(lines))))
    for name, value in rows:
        grid.add_row(name, value)
    for error in job.errors:
        grid.add_row(f"error #{error.attempt}", shown(f"{_when(error.time)}\n{error.message}", style="red"))
    return Panel(grid, title=Text(job.id, style="bold"), border_style=style, expand=False)


def _limits(limits: QueueLimits) -> str:
    parts = []
    if limits.rate_per_second:
        parts.append(f"{limits.rate_per_second:g}/s")
    if limits.max_active:
        parts.append(f"{limits.max_active} active")
    if limits.group_rate_per_second:
        parts.append(f"{limits.group_rate_per_second:g}/s per group")
    if limits.group_max_active:
        parts.append(f"{limits.group_max_active} active per group")
    return ", ".join(parts)


def stats_table(queues: Sequence[QueueStats], caption: str | None = None) -> Table:
    columns = ("queued", "scheduled", "active", "completed", "dead", "cancelled", "waiting")
    table = Table("queue", *columns, "oldest", caption=caption, box=box.SIMPLE_HEAD, show_edge=False)
    table.columns[0].overflow = "fold"  # a long queue name wraps rather than end in "…"
    for column in table.columns[1:]:
        column.justify = "right"
    for queue in queues:
        age = queue.oldest_queued_age.total_seconds()
        counts = [str(getattr(queue, column)) for column in columns]
        dead = Text(counts[4], style="bold red" if queue.dead else "")
        name = Text(queue.queue)
        if queue.paused:  # its jobs wait for `jobq resume`
            name.append(" (paused)", style="bold yellow")
        if queue.limits is not None:
            name.append(f" ({_limits(queue.limits)})", style="cyan")
        table.add_row(name, *counts[:4], dead, *counts[5:], human_duration(age) if age else "-")
    if not queues:
        table.add_row("(no queues yet)", *[""] * (len(columns) + 1))
    return table


def toggle_each(
    conn: Conn, names: Sequence[str], kind: str, done: str, call: Callable[[Client, str], bool]
) -> None:
    """Applies an idempotent switch (pause, resume) to each name; prints what changed, or with
    --json {"results": [{kind: name, "changed": ...}]}."""
    results = []
    with reported_errors(conn), conn.client() as client:
        for name in names:
            changed = call(client, name)
            results.append({kind: name, "changed": changed})
            if not conn.as_json:
                click.echo(f"{done} {name}" if changed else f"{name} was already {done}")
    if conn.as_json:
        conn.emit({"results": results})


def for_each(conn: Conn, job_ids: Sequence[str], action: str, call: Callable[[Client, str], None]) -> None:
    """Applies `call` to every id; reports each failure and exits non-zero if any failed."""
    outcomes: list[dict[str, Any]] = []
    failures: list[JobQueueError] = []
    with conn.client() as client:
        for job_id in job_ids:
            try:
                call(client, job_id)
                outcomes.append({"job_id": job_id, "ok": True})
            except JobQueueError as error:
                click.echo(error_line(error, conn.target), err=True)
                failures.append(error)
                outcomes.append({"job_id": job_id, "ok": False, "error": error_doc(error)})
                continue
            if not conn.as_json:
                stdout_console().print(f"[green]{action}[/] [bold]{job_id}[/]", highlight=False)
    if conn.as_json:
        conn.emit({"results": outcomes})
    if failures:
        invalid_only = all(isinstance(error, InvalidArgument) for error in failures)
        raise click.exceptions.Exit(EXIT_INVALID if invalid_only else EXIT_FAILED)


def error_doc(error: JobQueueError) -> dict[str, Any]:
    return {"reason": error.reason, "code": error.code.name, "field": error.field, "message": error.message}
