"""`jobq certs`: a local CA and a server certificate for a private deployment (compose)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="A DNS name or address clients dial the server by; repeatable (e.g. server, localhost).",
)
def certs(folder: Path, hosts: tuple[str, ...]) -> None:
    """Write FOLDER/ca.pem, FOLDER/server.pem and FOLDER/server.key (0600) for `jobq serve
    --tls-cert --tls-key`, and for clients' JOBQ_TLS_CA. Files that are still good (naming every
    host, more than a week from expiring) are kept, so it is safe to run at every start."""
    from jobqueue_cli.devstack.certs import local_certificates

    made = local_certificates(folder, list(hosts))
    click.echo(f"CA {made.ca}\ncertificate {made.cert} (key {made.key}) for {', '.join(hosts)}")


COMMANDS = [certs]
