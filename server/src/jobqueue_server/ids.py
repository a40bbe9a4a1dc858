"""Job ids: `<queue>:<ulid>`, so any server finds a job's queue (and hash slot) from its id.

The ulid part is a 26-character Crockford base32 string, 48 bits of milliseconds then 80
random bits, so ids sort by creation time.
"""

from __future__ import annotations

import os
import re

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_ulid(now_ms: int) -> str:
    """A fresh unique id that sorts after ids of earlier milliseconds (`now_ms`: the clock's)."""
    return _encode(now_ms << 80 | int.from_bytes(os.urandom(10), "big"))


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulids(now_ms: int, count: int) -> list[str]:
    """`count` fresh ulids of one millisecond, from one read of the OS's random source."""
    random = os.urandom(10 * count)
    return [_encode(now_ms << 80 | int.from_bytes(random[i * 10 : i * 10 + 10], "big")) for i in range(count)]


def make_job_id(queue: str, ulid: str) -> str:
    return f"{queue}:{ulid}"


def split_job_id(job_id: str) -> tuple[str, str] | None:
    """The (queue, ulid) a job id is made of, or None when it is not a well-formed id."""
    queue, sep, ulid = job_id.rpartition(":")
    if not sep or not QUEUE_NAME_RE.fullmatch(queue) or not _ULID_RE.fullmatch(ulid):
        return None
    return queue, ulid
