"""The first admin token of a server run with --auth: made when the store holds no token, and
written to a file only this user can read, so the operator can make the others with it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobqueue_server.auth.policy import ALL_QUEUES, Role
from jobqueue_server.auth.tokens import new_token
from jobqueue_server.runtime.valkey import private_dir, write_private
from jobqueue_server.store.tokens import TokenRecord, TokenStore

logger = logging.getLogger(__name__)


async def write_bootstrap_token(tokens: TokenStore, path: Path, now_ms: int) -> None:
    """Makes an unrestricted admin token when no token exists, and writes it to `path`."""
    text, token_id, digest = new_token()
    record = TokenRecord(token_id, "bootstrap admin", Role.ADMIN.value, (ALL_QUEUES,), now_ms, None, digest)
    # Written aside first: a token nobody can read must not be stored, and an admin.token of an
    # earlier start must not be overwritten by one that is not stored.
    private_dir(path.parent)
    pending = path.with_name(path.name + ".new")
    write_private(pending, text + "\n")
    stored = False
    try:
        stored = await tokens.bootstrap([record], owner=f"{os.getpid()}:{token_id}")
    finally:
        if not stored:
            pending.unlink(missing_ok=True)
    if not stored:
        return
    os.replace(pending, path)
    logger.warning("no API token existed: an admin token (id %s) was written to %s", token_id, path)
