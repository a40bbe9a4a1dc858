"""`jobq token create | list | revoke`: API tokens, managed with an admin token for every queue."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import click
from rich import box
from rich.table import Table

from jobqueue import TokenInfo, TokenRole
from jobqueue_cli.producer_io import Conn, client_options, jsonable, reported_errors, shown, stdout_console


@click.group()
def token() -> None:
    """API tokens for a server run with --auth (docs/security.md)."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(get_args(TokenRole)), required=True, help="What the token may do.")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    required=True,
    help="A queue pattern it may touch (shell-style: emails, images.*, *); repeatable.",
)
@click.option(
    "--ttl", type=click.FloatRange(min=0, min_open=True), help="Seconds until it expires; unset: never."
)
@client_options
def token_create(conn: Conn, name: str, role: TokenRole, queues: tuple[str, ...], ttl: float | None) -> None:
    """Create a token named NAME and print its secret (shown this once)."""
    with reported_errors(conn), conn.client() as client:
        made = client.create_token(name, role, queues, ttl=timedelta(seconds=ttl) if ttl else None)
    if conn.as_json:
        conn.emit({"token": made.token, "info": jsonable(made.info)})
        return
    click.echo(made.token)
    click.echo(f"id {made.info.token_id}, {made.info.role} on {', '.join(made.info.queues)}", err=True)


@token.command("list")
@client_options
def token_list(conn: Conn) -> None:
    """List every token (never their secrets)."""
    with reported_errors(conn), conn.client() as client:
        tokens = client.list_tokens()
    if conn.as_json:
        conn.emit({"tokens": [jsonable(t) for t in tokens]})
        return
    stdout_console().print(_table(tokens))


def _table(tokens: list[TokenInfo]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(tokens)} tokens")
    for column in ("id", "name", "role", "queues", "created", "expires"):
        table.add_column(column)
    for info in tokens:
        expires = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
        table.add_row(
            info.token_id,
            shown(info.name),
            info.role,
            shown(", ".join(info.queues)),
            info.created_at.isoformat(timespec="seconds"),
            expires,
        )
    return table


@token.command("revoke")
@click.argument("token_ids", nargs=-1, required=True, metavar="TOKEN_ID...")
@client_options
def token_revoke(conn: Conn, token_ids: tuple[str, ...]) -> None:
    """Revoke tokens: calls with them are refused, their open streams end within seconds."""
    with reported_errors(conn), conn.client() as client:
        for token_id in token_ids:
            client.revoke_token(token_id)
            if not conn.as_json:
                click.echo(f"revoked {token_id}")
    if conn.as_json:
        conn.emit({"revoked": list(token_ids)})


COMMANDS = [token]
