"""Enqueue throughput at each durability level, under appendfsync everysec and always.

For each appendfsync setting the benchmark starts an embedded Valkey (AOF on, in a temporary
folder) with one replica, and a real `jobq serve` process on it, then drives Enqueue from this
process over gRPC: unary calls with N in flight, and EnqueueBatch calls of B jobs with M in
flight, each for a few seconds at DURABILITY_APPLIED, DURABILITY_FSYNCED and
DURABILITY_REPLICATED (WAIT for the replica). It prints a Markdown
table and the command line that produced it (docs/durability.md quotes both).

    .venv/bin/python bench/durability.py
    .venv/bin/python bench/durability.py --seconds 5 --in-flight 64 --batch 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.runtime.valkey import EmbeddedValkey

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

LEVELS: dict[str, job_pb2.Durability.ValueType] = {
    "applied": job_pb2.DURABILITY_APPLIED,
    "fsynced": job_pb2.DURABILITY_FSYNCED,
    "replicated": job_pb2.DURABILITY_REPLICATED,
}
LISTENING = re.compile(r"^jobqueue listening on \S+:(?P<port>\d+) ")
SERVER_START_S = 30.0
PAYLOAD = b"x" * 100  # a small job, as most are


@dataclass
class Run:
    """One measured run: jobs acknowledged, and each call's latency in ms."""

    jobs: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]


async def drive(call: Callable[[], Awaitable[int]], in_flight: int, seconds: float) -> Run:
    """Keeps `in_flight` calls going for `seconds`; each call returns the jobs it added."""
    run = Run()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            added = await call()  # not `run.jobs += await ...`: that reads run.jobs before awaiting
            run.jobs += added
            run.latencies_ms.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    run.seconds = time.perf_counter() - started
    return run


def unary(stub: Stub, level: job_pb2.Durability.ValueType) -> Callable[[], Awaitable[int]]:
    request = svc.EnqueueRequest(queue="bench", payload_bytes=PAYLOAD, durability=level)

    async def call() -> int:
        await stub.Enqueue(request)
        return 1

    return call


def batched(stub: Stub, level: job_pb2.Durability.ValueType, size: int) -> Callable[[], Awaitable[int]]:
    item = svc.EnqueueRequest(queue="bench", payload_bytes=PAYLOAD)
    request = svc.EnqueueBatchRequest(requests=[item] * size, durability=level)

    async def call() -> int:
        return len((await stub.EnqueueBatch(request)).responses)

    return call


@contextmanager
def jobq_serve(redis_url: str) -> Iterator[int]:
    """A real `jobq serve` on the given Redis; yields its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    args = [sys.executable, "-m", "jobqueue_cli", "serve", "--redis-url", redis_url, "--port", "0"]
    args += ["--host", "127.0.0.1", "--log-level", "WARNING"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    try:
        yield _port_of(process)
    finally:
        process.terminate()
        process.wait(SERVER_START_S)


def _port_of(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("jobq serve exited before it listened")
        if match := LISTENING.match(line):
            return int(match["port"])
    raise RuntimeError("jobq serve did not start in time")


async def measure(port: int, args: argparse.Namespace) -> list[tuple[str, str, Run]]:
    rows = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Stub = svc_grpc.JobQueueServiceStub(channel)
        await drive(unary(stub, LEVELS["applied"]), args.in_flight, 0.5)  # warm up: scripts, JIT-free paths
        for name, level in LEVELS.items():
            shape = f"unary, {args.in_flight} in flight"
            rows.append((shape, name, await drive(unary(stub, level), args.in_flight, args.seconds)))
            shape = f"batch of {args.batch}, {args.batch_in_flight} in flight"
            call = batched(stub, level, args.batch)
            rows.append((shape, name, await drive(call, args.batch_in_flight, args.seconds)))
    return rows


def bench_fsync_mode(mode: str, args: argparse.Namespace) -> list[tuple[str, str, Run]]:
    with tempfile.TemporaryDirectory(prefix="jobq-bench-") as folder:
        valkey = EmbeddedValkey(Path(folder) / "primary", extra_config={"appendfsync": mode})
        valkey.start()
        replica = EmbeddedValkey(
            Path(folder) / "replica", extra_config={"replicaof": f"127.0.0.1 {valkey.port}"}
        )
        replica.start()
        try:
            _wait_for_link(replica)
            with jobq_serve(valkey.url) as port:
                return asyncio.run(measure(port, args))
        finally:
            replica.stop()
            valkey.stop()


def _wait_for_link(replica: EmbeddedValkey) -> None:
    with redis.Redis(port=replica.port) as client:
        deadline = time.monotonic() + SERVER_START_S
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not connect")
            time.sleep(0.05)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} CPUs ({model}), {system}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run")
    parser.add_argument("--in-flight", type=int, default=32, help="unary calls in flight")
    parser.add_argument("--batch", type=int, default=100, help="jobs per EnqueueBatch")
    parser.add_argument("--batch-in-flight", type=int, default=4, help="batch calls in flight")
    parser.add_argument("--fsync", default="everysec,always", help="appendfsync settings to try")
    args = parser.parse_args()

    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}\n")
    print("| appendfsync | calls | durability | jobs/s | call p50 ms | call p99 ms |")
    print("|---|---|---|---:|---:|---:|")
    for mode in args.fsync.split(","):
        for shape, level, run in bench_fsync_mode(mode, args):
            print(
                f"| {mode} | {shape} | {level} | {run.per_second:,.0f} | "
                f"{run.percentile(50):.2f} | {run.percentile(99):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
