"""One measurement's outcome, as bench/PROTOCOL.md's JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobqueue_bench.config import BenchConfig
from jobqueue_bench.cost import Cost

SYSTEM = "jobqueue"


@dataclass
class Result:
    config: BenchConfig
    jobs: int = 0
    seconds: float = 0.0
    latency_ms: dict[str, float] | None = None
    cost: Cost | None = None
    notes: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: Figures beyond the protocol's (server processes read, the producer's own report...).
    extra: dict[str, Any] = field(default_factory=dict)
    #: latency_idle's idle phase (idle.IdleCost.document()), when it ran.
    idle: dict[str, Any] | None = None

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "system": SYSTEM, "scenario": self.config.scenario, "config": self.config.document(),
            "jobs": self.jobs, "seconds": round(self.seconds, 6),
            "jobs_per_second": round(self.jobs_per_second, 1),
            "latency_ms": self.latency_ms,
            "cost": self.cost.document() if self.cost is not None else None,
            "versions": self.versions, "notes": self.notes,
        }  # fmt: skip
        if self.extra:
            document["extra"] = self.extra
        if self.idle is not None:
            document["idle"] = self.idle
        if self.error is not None:
            document["error"] = self.error
        return document
