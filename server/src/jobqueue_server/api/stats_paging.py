"""Stats of every queue, a page at a time: the token is the last queue name of the page before."""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Sequence

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.errors import FieldViolation
from jobqueue_server.ids import QUEUE_NAME_RE

MAX_PAGE_SIZE = 1000


def page_of(request: svc.StatsRequest, queues: Sequence[str]) -> tuple[list[str], str]:
    """The queues of the page `request` asks for, from the sorted `queues`, and the token of
    the next page ("" on the last)."""
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise FieldViolation("page_size", f"must be between 0 ({MAX_PAGE_SIZE}) and {MAX_PAGE_SIZE}")
    size = request.page_size or MAX_PAGE_SIZE
    start = bisect.bisect_right(queues, _after(request.page_token)) if request.page_token else 0
    page = list(queues[start : start + size])
    more = start + size < len(queues)
    return page, _token(page[-1]) if more and page else ""


def _token(queue: str) -> str:
    return base64.urlsafe_b64encode(queue.encode()).decode().rstrip("=")


def _after(token: str) -> str:
    try:
        queue = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        queue = ""
    if not QUEUE_NAME_RE.fullmatch(queue):
        raise FieldViolation("page_token", "is not a token from a previous Stats page")
    return queue
