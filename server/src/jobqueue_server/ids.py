"""Job ids: `<queue>:<ulid>`, so any server finds a job's queue (and hash slot) from its id.
In a partitioned queue the queue part names the partition: `<queue>~<n>` for partitions 1 and
up (partition 0 is the queue itself; `~` is in no queue name).

The ulid part is a 26-character Crockford base32 string, 48 bits of milliseconds then 80
random bits, so ids sort by creation time.
"""

from __future__ import annotations

import os
import re

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PARTITION_SEPARATOR = "~"
MAX_PARTITIONS = 64
_STORED_QUEUE_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}(~[1-9][0-9]?)?")


def new_ulid(now_ms: int) -> str:
    """A fresh unique id that sorts after ids of earlier milliseconds (`now_ms`: the clock's)."""
    return _time_part(now_ms) + _randomness.take(1)


def new_ulids(now_ms: int, count: int) -> list[str]:
    """`count` fresh ulids of one millisecond: the time part once, the random parts from the
    pool of OS randomness."""
    prefix = _time_part(now_ms)
    random = _randomness.take(count)
    return [prefix + random[i : i + 16] for i in range(0, 16 * count, 16)]


class _RandomParts:
    """The 16-character random parts of ulids, read from the OS's random source in chunks: one
    read per call cost more than the rest of a unary Enqueue's id."""

    CHUNK = 256  # random parts per read

    def __init__(self) -> None:
        self._chars = ""
        self._at = 0
        os.register_at_fork(after_in_child=self.clear)  # a child must not repeat its parent's ids

    def clear(self) -> None:
        self._chars, self._at = "", 0

    def take(self, count: int) -> str:
        start, end = self._at, self._at + 16 * count
        if end > len(self._chars):
            fresh = max(count, self.CHUNK)
            # A character per random byte, from its low 5 bits (256 is a multiple of 32: each
            # character as likely as another), by bytes.translate in C; base64.b32encode is
            # Python code in 3.11 and cost 6 % of a batched enqueue's server CPU.
            self._chars = os.urandom(16 * fresh).translate(_BYTE_TO_CROCKFORD).decode()
            start, end = 0, 16 * count
        self._at = end
        return self._chars[start:end]


_last_time: tuple[int, str] = (-1, "")


def _time_part(now_ms: int) -> str:
    """The first 10 characters: 48 bits of milliseconds, in 5-bit groups from the top (the last
    one kept: calls of one millisecond share it)."""
    global _last_time
    if _last_time[0] != now_ms:
        _last_time = (now_ms, "".join(_ALPHABET[(now_ms >> shift) & 31] for shift in range(45, -1, -5)))
    return _last_time[1]


# Any byte -> the Crockford character of its low 5 bits: 16 characters carry 80 random bits.
_BYTE_TO_CROCKFORD = bytes(_ALPHABET.encode()[byte & 31] for byte in range(256))
_randomness = _RandomParts()


def make_job_id(queue: str, ulid: str) -> str:
    return f"{queue}:{ulid}"


def split_job_id(job_id: str) -> tuple[str, str] | None:
    """The (stored queue, ulid) a job id is made of, or None when it is not a well-formed id.
    The stored queue is a partition's name in a partitioned queue (`partition_name`)."""
    queue, sep, ulid = job_id.rpartition(":")
    if not sep or not is_stored_queue(queue) or not _ULID_RE.fullmatch(ulid):
        return None
    return queue, ulid


def is_stored_queue(name: str) -> bool:
    """Whether `name` is a queue's or a partition's (the queue part of a job id)."""
    return _STORED_QUEUE_RE.fullmatch(name) is not None


def partition_name(queue: str, index: int) -> str:
    """Where partition `index` of `queue` is stored: the queue's own name for partition 0, so
    adding partitions to a queue leaves its jobs and their ids where they are."""
    return f"{queue}{PARTITION_SEPARATOR}{index}" if index else queue


def queue_of(stored: str) -> str:
    """The queue a stored queue (a queue, or one of its partitions) belongs to."""
    return stored.partition(PARTITION_SEPARATOR)[0]
