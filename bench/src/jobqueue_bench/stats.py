"""What a benchmark worker records, and the file through which the benchmark reads it.

The worker rewrites its file (atomically: a temporary file, then rename) a few times a
second while jobs run, and once more with every latency sample when it stops. Reading
files adds nothing to what Redis or the servers do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class WorkerStats:
    """Counts and wall-clock times (seconds since the epoch) of one worker process."""

    count: int = 0
    warmups: int = 0
    connections: int = 0
    first_start: float | None = None
    last_end: float | None = None
    #: handler start minus the payload's "t", in ms; written only in the final file.
    latencies_ms: list[float] = field(default_factory=list)
    final: bool = False

    def write(self, path: Path, *, with_latencies: bool) -> None:
        # Field by field, not dataclasses.asdict: that deep-copies the samples on every write,
        # which cost the worker more CPU than the jobs it was measuring.
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        if not with_latencies:
            document["latencies_ms"] = []
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document))
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path) -> WorkerStats:
        """The last state written; an empty one before the first write."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()

    @classmethod
    def combine(cls, parts: Iterable[WorkerStats]) -> WorkerStats:
        """The stats of several workers as one: counts summed, the earliest start, the latest end."""
        total = cls(final=True)
        for part in parts:
            total.count += part.count
            total.warmups += part.warmups
            total.connections += part.connections
            total.latencies_ms += part.latencies_ms
            total.final = total.final and part.final
            if part.first_start is not None:
                total.first_start = min(part.first_start, total.first_start or part.first_start)
            if part.last_end is not None:
                total.last_end = max(part.last_end, total.last_end or part.last_end)
        return total
