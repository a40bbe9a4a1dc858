"""Log lines as text or as JSON, with the job they concern.

While a handler runs, `job_fields` holds its job's id, queue, attempt and worker id, and every
line logged in that context (the runtime's and the handler's own, in its task or its thread) carries
them: as attributes of the record, and as keys of the JSON object with `--log-format json`. A
line about a job outside a handler passes them with `extra=job_extra(...)`.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
JOB_KEYS = ("job_id", "queue", "attempt", "worker_id")
job_fields: ContextVar[dict[str, Any] | None] = ContextVar("job_fields", default=None)
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_extra(
    job_id: str, queue: str = "", attempt: int | None = None, worker_id: str = ""
) -> dict[str, Any]:
    """`extra=` for a line about one job, logged outside its handler."""
    fields = {
        "job_id": job_id,
        "queue": queue or job_id.rpartition(":")[0],
        "attempt": attempt,
        "worker_id": worker_id,
    }
    return {key: value for key, value in fields.items() if value not in (None, "")}


class JobFields(logging.Filter):
    """Adds the running job's fields to each record that has none of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = job_fields.get()
        if fields is not None:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job's fields when the line
    concerns a job, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: getattr(record, key) for key in JOB_KEYS if getattr(record, key, None) is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, log_format: LogFormat = "text") -> None:
    """The process's logging: `level`, text or JSON lines on stderr, job fields on every line."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    handler.addFilter(JobFields())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
