"""What one measurement measures: the scenario and its knobs (bench/PROTOCOL.md's command line)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

Scenario = Literal["enqueue_unary", "enqueue_batch", "drain", "end_to_end", "latency_rate", "latency_idle"]
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)
# Who makes enqueue_unary's calls: our Python, Go or TypeScript client (batching on, as by
# default), or a generic stub (bench/loadgen: raw unary Enqueue, nothing to batch).
Client = Literal["python", "go", "node", "stub"]
CLIENTS: tuple[Client, ...] = get_args(Client)
LATENCY_SCENARIOS: frozenset[Scenario] = frozenset({"enqueue_unary", "latency_rate", "latency_idle"})
WORKER_SCENARIOS: frozenset[Scenario] = frozenset({"drain", "end_to_end", "latency_rate", "latency_idle"})

DEFAULT_JOBS = 20_000
DEFAULT_IDLE_SAMPLES = 200
DEFAULT_IDLE_STREAMS = 50
DEFAULT_IDLE_SECONDS = 10.0
CONNECTIONS_PER_PROCESS = 4  # the kernel spreads connections, not calls, over SO_REUSEPORT processes


@dataclass(frozen=True)
class BenchConfig:
    """One measurement. `jobs` is ignored by latency_rate (rate x duration instead).

    `servers` separate `jobq serve` processes (each its own port), each of them `processes`
    server processes on one port behind a supervisor (`jobq serve --processes N`).
    `client` and `connections` shape enqueue_unary; `idle_streams` and `idle_seconds` the idle
    phase that follows latency_idle's samples (0 streams: none).
    """

    scenario: Scenario
    jobs: int = DEFAULT_JOBS
    workers: int = 1
    concurrency: int = 256
    batch: int = 500
    in_flight: int = 64
    payload_bytes: int = 100
    rate: int = 1000
    duration: float = 5.0
    servers: int = 1
    processes: int = 1
    client: Client = "python"
    connections: int | None = None  # None: CONNECTIONS_PER_PROCESS per server process
    idle_streams: int = DEFAULT_IDLE_STREAMS
    idle_seconds: float = DEFAULT_IDLE_SECONDS

    @property
    def job_count(self) -> int:
        """The jobs the measurement sends."""
        if self.scenario == "latency_rate":
            return max(1, round(self.rate * self.duration))
        return self.jobs

    @property
    def connection_count(self) -> int:
        """Connections of the stub client (bench/loadgen)."""
        return self.connections or CONNECTIONS_PER_PROCESS * self.processes

    @property
    def uses_workers(self) -> bool:
        return self.scenario in WORKER_SCENARIOS

    def document(self) -> dict[str, Any]:
        """The config as the protocol's "config" object: every knob, with the jobs actually sent."""
        knobs = {name: value for name, value in dataclasses.asdict(self).items() if name != "scenario"}
        return {**knobs, "jobs": self.job_count, "connections": self.connection_count}

    def label(self) -> str:
        """The knobs that matter to this scenario, compactly: "N=20000 W=1 C=256 P=100B K=1"."""
        parts = {"latency_rate": f"R={self.rate}/s S={self.duration:g}s"}.get(self.scenario, f"N={self.jobs}")
        knobs: list[str] = [parts]
        if self.scenario == "enqueue_unary":
            knobs += [f"client={self.client}", f"F={self.in_flight}"]
            if self.client == "stub":
                knobs.append(f"conns={self.connection_count}")
        if self.scenario in ("enqueue_batch", "end_to_end"):
            knobs.append(f"B={self.batch}")
        if self.uses_workers:
            knobs += [f"W={self.workers}", f"C={self.concurrency}"]
        if self.scenario == "latency_idle" and self.idle_streams:
            knobs.append(f"idle={self.idle_streams}x{self.idle_seconds:g}s")
        knobs += [f"P={_size(self.payload_bytes)}", f"K={self.servers}"]
        if self.processes > 1:
            knobs.append(f"procs={self.processes}")
        return " ".join(knobs)

    def replace(self, **changes: Any) -> BenchConfig:
        return dataclasses.replace(self, **changes)


def _size(count: int) -> str:
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024}KiB"
    return f"{count}B"
