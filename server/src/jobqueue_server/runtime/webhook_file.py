"""Webhooks declared in a TOML file (--webhooks-file), kept in Redis as the file says.

::

    [[webhook]]
    name = "ops"                                # its id is "file:ops"
    url = "https://hooks.example.com/jobqueue"
    queue = "emails"                            # omit: every queue
    oldest_job_age_seconds = 300                # omit: no age alert
    dead_jobs = 10                              # omit or 0: no dead-count alert
    allow_private_network = false
    secret_env = "OPS_WEBHOOK_SECRET"           # or secret = "..." (the HMAC key)

At start, each server stores every webhook of the file (same checks as CreateWebhook) and
deletes the file webhooks the file no longer has; webhooks made by RPC are left alone. Applying
the same file again changes nothing, so any number of servers may share it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.webhook_admin import WebhookAdmin
from jobqueue_server.errors import FieldViolation

ID_PREFIX = "file:"
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
KEYS = {
    "name",
    "url",
    "queue",
    "oldest_job_age_seconds",
    "dead_jobs",
    "allow_private_network",
    "secret",
    "secret_env",
}
MIN_SECRET_CHARS = 16


class WebhookFileError(ValueError):
    """A webhooks file the server refuses to start with; the message names the entry and key."""


@dataclass(frozen=True)
class Declared:
    id: str
    webhook: svc.Webhook
    secret: str


def read(path: Path) -> list[Declared]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise WebhookFileError(f"{path}: {error}") from error
    unknown = set(document) - {"webhook"}
    if unknown:
        raise WebhookFileError(f"{path}: unknown table {sorted(unknown)[0]!r} (expected [[webhook]])")
    entries = document.get("webhook", [])
    if not isinstance(entries, list):
        raise WebhookFileError(f"{path}: webhook must be an array of tables ([[webhook]])")
    declared = [_entry(path, index, entry) for index, entry in enumerate(entries)]
    names = [d.id for d in declared]
    if len(set(names)) != len(names):
        raise WebhookFileError(f"{path}: two webhooks have the same name")
    return declared


def _entry(path: Path, index: int, entry: Any) -> Declared:
    where = f"{path}: webhook {index + 1}"
    if not isinstance(entry, dict):
        raise WebhookFileError(f"{where}: must be a table")
    if unknown := set(entry) - KEYS:
        raise WebhookFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise WebhookFileError(f"{where}: name must be 1 to 64 of letters, digits, '.', '_' and '-'")
    webhook = svc.Webhook(
        url=_typed(where, entry, "url", str, ""),
        queue=_typed(where, entry, "queue", str, ""),
        dead_jobs=_typed(where, entry, "dead_jobs", int, 0),
        allow_private_network=_typed(where, entry, "allow_private_network", bool, False),
    )
    if "oldest_job_age_seconds" in entry:
        age = entry["oldest_job_age_seconds"]
        if isinstance(age, bool) or not isinstance(age, int | float):
            raise WebhookFileError(f"{where}: oldest_job_age_seconds must be a number")
        webhook.oldest_job_age.FromMilliseconds(int(age * 1000))
    return Declared(ID_PREFIX + name, webhook, _secret(where, entry))


def _typed(where: str, entry: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = entry.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WebhookFileError(f"{where}: {key} must be a {kind.__name__}")
    return value


def _secret(where: str, entry: dict[str, Any]) -> str:
    if ("secret" in entry) == ("secret_env" in entry):
        raise WebhookFileError(f"{where}: give exactly one of secret and secret_env")
    if "secret_env" in entry:
        variable = _typed(where, entry, "secret_env", str, "")
        secret = os.environ.get(variable, "")
        if not secret:
            raise WebhookFileError(f"{where}: the environment variable {variable} is not set")
    else:
        secret = _typed(where, entry, "secret", str, "")
    if len(secret) < MIN_SECRET_CHARS:
        raise WebhookFileError(f"{where}: the secret must have at least {MIN_SECRET_CHARS} characters")
    return secret


async def apply(admin: WebhookAdmin, path: Path, declared: list[Declared]) -> None:
    """Stores the file's webhooks and removes the file webhooks it no longer declares."""
    for entry in declared:
        try:
            await admin.put_declared(entry.id, entry.webhook, entry.secret)
        except FieldViolation as violation:
            raise WebhookFileError(f"{path}: webhook {entry.id!r}: {violation}") from None
    wanted = {entry.id for entry in declared}
    for webhook in (await admin.list()).webhooks:
        if webhook.id.startswith(ID_PREFIX) and webhook.id not in wanted:
            await admin.delete(webhook.id)
