"""The bearer token format, `jq_<id>_<secret>`, and how a secret is checked against its hash.

The secret is 256 random bits, so a plain SHA-256 of it is enough to store (no salt or slow
hash: nobody can guess such a secret, they can only steal it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "jq"
_TOKEN = re.compile(r"^jq_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def new_token() -> tuple[str, str, str]:
    """A fresh token: (the bearer text, its id, the SHA-256 of its secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}_{token_id}_{secret}", token_id, secret_hash(secret)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token; None for anything else."""
    match = _TOKEN.match(text)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_sha256)
