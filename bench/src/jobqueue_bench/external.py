"""enqueue_unary from outside producers: the Go client, the TypeScript client, a generic stub.

Each is a program of its own (tools.py finds it) that makes N calls with 64 in flight after
a warm-up of its own, and prints one JSON line: its jobs, seconds, the CPU it spent over the
measurement and, where it times calls, their latency. `ToolRun` is that line, read the same
way for all three.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from jobqueue_bench.config import BenchConfig
from jobqueue_bench.processes import child_env
from jobqueue_bench.tools import NODE_SCRIPT, go_binary, node, node_client

GO_WARMUP_JOBS = 2000  # enqueue-load's own default
NODE_WARMUP_JOBS = 2000  # V8 compiles the hot paths in the first few thousand calls
STUB_WARMUP = "1s"  # loadgen's own default
SMALL_RUN = 1000  # below this many jobs (a smoke run), warm-ups shrink with it
TOOL_STOP_S = 10.0


class ToolFailed(RuntimeError):
    """An outside producer exited with an error, or some of its calls failed."""


@dataclass(frozen=True)
class ToolRun:
    """What an outside producer reports of its measurement."""

    jobs: int
    seconds: float
    cpu_seconds: float
    latency_ms: dict[str, float] | None
    detail: str  # for the notes: calls made, jobs per call


def _warmup(config: BenchConfig, jobs: int) -> int:
    return jobs if config.jobs >= SMALL_RUN else max(1, config.jobs // 10)


def command(config: BenchConfig, target: str, queue: str) -> list[str]:
    """The producer's command line; ToolMissing when it is not built."""
    c = config
    if c.client == "go":
        return [
            str(go_binary("enqueue-load")), "--target", target, "--queue", queue,
            "--jobs", str(c.jobs), "--concurrency", str(c.in_flight),
            "--warmup", str(_warmup(c, GO_WARMUP_JOBS)), "--payload-bytes", str(c.payload_bytes), "--latency",
        ]  # fmt: skip
    if c.client == "node":
        return [
            str(node()), str(NODE_SCRIPT), "--client-dir", str(node_client()), "--target", target,
            "--queue", queue, "--jobs", str(c.jobs), "--concurrency", str(c.in_flight),
            "--warmup", str(_warmup(c, NODE_WARMUP_JOBS)), "--payload-bytes", str(c.payload_bytes),
        ]  # fmt: skip
    if c.client == "stub":
        warmup = STUB_WARMUP if c.jobs >= SMALL_RUN else "200ms"
        return [
            str(go_binary("loadgen")), "--target", target, "--kind", "enqueue", "--queue", queue,
            "--calls", str(c.jobs), "--concurrency", str(c.in_flight),
            "--connections", str(c.connection_count), "--payload-bytes", str(c.payload_bytes),
            "--warmup", warmup,
        ]  # fmt: skip
    raise ValueError(f"{c.client} is not an outside producer")


def run_tool(argv: list[str], timeout_s: float) -> dict[str, Any]:
    """Runs a producer to its end (stopped on timeout) and returns its JSON line."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=child_env({}), timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ToolFailed(f"{argv[0]} did not finish within {timeout_s:.0f} s") from error
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise ToolFailed(f"{argv[0]} exited with {done.returncode}: {tail}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ToolFailed(f"{argv[0]} printed no JSON line: {done.stdout[-300:]!r}")
    line: dict[str, Any] = json.loads(lines[-1])
    return line


def _latency(line: dict[str, Any]) -> dict[str, float] | None:
    latency = line.get("latency_ms")
    return {name: round(float(value), 3) for name, value in latency.items()} if latency else None


def parse(client: str, line: dict[str, Any]) -> ToolRun:
    """The producer's line as a ToolRun; ToolFailed when some of its calls failed."""
    if client == "stub":
        errors = sum(line.get("errors", {}).values())
        if errors:
            raise ToolFailed(f"loadgen: {errors} calls failed: {line['errors']}")
        return ToolRun(
            jobs=int(line["calls"]), seconds=float(line["seconds"]),
            cpu_seconds=float(line["loadgen_cpu_seconds"]), latency_ms=_latency(line),
            detail=f"raw unary Enqueue calls, {line['connections']} connections, no batching",
        )  # fmt: skip
    if line.get("errors"):
        raise ToolFailed(f"{line['errors']} enqueue calls failed, the first: {line.get('first_error')}")
    calls = line.get("calls")
    return ToolRun(
        jobs=int(line["jobs"]), seconds=float(line["seconds"]),
        cpu_seconds=float(line["client_cpu_seconds"]), latency_ms=_latency(line),
        detail=f"{calls} calls or stream messages on the wire ({line.get('jobs_per_call', 0):.1f} jobs each)",
    )  # fmt: skip
