"""Job ids: `<queue>:<ulid>`, so any server finds a job's queue (and hash slot) from its id.

The ulid part is a 26-character Crockford base32 string, 48 bits of milliseconds then 80
random bits, so ids sort by creation time.
"""

from __future__ import annotations

import base64
import os
import re

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_ulid(now_ms: int) -> str:
    """A fresh unique id that sorts after ids of earlier milliseconds (`now_ms`: the clock's)."""
    return new_ulids(now_ms, 1)[0]


def new_ulids(now_ms: int, count: int) -> list[str]:
    """`count` fresh ulids of one millisecond: the time part once, the random parts from one
    read of the OS's random source, all in base32 by the C code of `base64`."""
    prefix = _time_part(now_ms)
    random = base64.b32encode(os.urandom(10 * count)).translate(_TO_CROCKFORD).decode()
    return [prefix + random[i : i + 16] for i in range(0, 16 * count, 16)]


def _time_part(now_ms: int) -> str:
    """The first 10 characters: 48 bits of milliseconds, in 5-bit groups from the top."""
    return "".join(_ALPHABET[(now_ms >> shift) & 31] for shift in range(45, -1, -5))


# RFC 4648's base32 alphabet -> Crockford's (80 random bits are exactly 16 characters of either).
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def make_job_id(queue: str, ulid: str) -> str:
    return f"{queue}:{ulid}"


def split_job_id(job_id: str) -> tuple[str, str] | None:
    """The (queue, ulid) a job id is made of, or None when it is not a well-formed id."""
    queue, sep, ulid = job_id.rpartition(":")
    if not sep or not QUEUE_NAME_RE.fullmatch(queue) or not _ULID_RE.fullmatch(ulid):
        return None
    return queue, ulid
