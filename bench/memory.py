"""Memory over a long run: Redis returns to its baseline once finished jobs pass their retention
window, and the server's RSS stays flat from one round of jobs to the next.

    .venv/bin/python bench/memory.py --jobs 100000 --rounds 3

Starts an embedded Valkey and a `jobq serve` process (retention 2 s, so trimming is visible
within the run), then for each round enqueues JOBS jobs in batches, runs them with an in-process
worker, waits until every finished job was trimmed, and prints Redis `used_memory` and the
server's RSS at the baseline, at the round's peak and after the trim.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from jobqueue import AsyncClient, JobContext, JobSpec, Worker
from jobqueue_server.runtime.valkey import EmbeddedValkey, free_port

BATCH = 1000
RETENTION_S = 2


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def used_memory(redis: Redis) -> int:
    info: dict[str, Any] = await redis.info("memory")
    return int(info["used_memory"])


async def wait_until(condition: Any, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.2)


async def one_round(client: AsyncClient, redis: Redis, server_pid: int, jobs: int) -> dict[str, int]:
    peak_memory, peak_rss = 0, 0
    payload = {"to": "user@example.com", "subject": "Welcome!", "body": "x" * 64}
    for start in range(0, jobs, BATCH):
        await client.enqueue_many(
            [JobSpec(queue="memory", payload=payload) for _ in range(min(BATCH, jobs - start))]
        )
        peak_memory = max(peak_memory, await used_memory(redis))
        peak_rss = max(peak_rss, rss_kib(server_pid))

    async def drained() -> bool:
        nonlocal peak_memory, peak_rss
        peak_memory = max(peak_memory, await used_memory(redis))
        peak_rss = max(peak_rss, rss_kib(server_pid))
        (stats,) = await client.stats("memory")
        return stats.queued + stats.active + stats.completed == 0

    await wait_until(drained)
    return {
        "peak_memory": peak_memory,
        "peak_rss_kib": peak_rss,
        "after_memory": await used_memory(redis),
        "after_rss_kib": rss_kib(server_pid),
    }


def start_server(url: str, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "JOBQ_RETENTION_SECONDS": str(RETENTION_S),
        "JOBQ_SWEEP_INTERVAL_SECONDS": "0.5",
        "JOBQ_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "jobqueue_server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen([*command, "--redis-url", url], env=env, stdout=subprocess.PIPE, text=True)


async def run(jobs: int, rounds: int, data: Path) -> None:
    valkey = EmbeddedValkey(data / "valkey")
    url = await asyncio.to_thread(valkey.start)
    port = free_port()
    server = await asyncio.to_thread(start_server, url, port)
    redis = Redis.from_url(url)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # the listening line
        target = f"127.0.0.1:{port}"

        async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
            return {"ok": True}

        worker = Worker(target, concurrency=256, handlers={"memory": handle})
        running = asyncio.create_task(worker.run())
        async with AsyncClient(target) as client:
            await client.stats()
            baseline = {"memory": await used_memory(redis), "rss_kib": rss_kib(server.pid)}
            print(
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
                f"{jobs} jobs per round, retention {RETENTION_S} s"
            )
            print(
                f"baseline: redis used_memory {baseline['memory'] / 2**20:.1f} MiB, "
                f"server RSS {baseline['rss_kib'] / 1024:.1f} MiB"
            )
            print(
                "round | redis peak MiB | redis after trim MiB | server RSS peak MiB | server RSS after MiB"
            )
            for number in range(1, rounds + 1):
                r = await one_round(client, redis, server.pid, jobs)
                print(
                    f"{number:5} | {r['peak_memory'] / 2**20:14.1f} | {r['after_memory'] / 2**20:20.1f} | "
                    f"{r['peak_rss_kib'] / 1024:19.1f} | {r['after_rss_kib'] / 1024:20.1f}",
                    flush=True,
                )
        worker.stop()
        await running
    finally:
        await redis.aclose()
        server.terminate()
        server.communicate(timeout=30)
        await asyncio.to_thread(valkey.stop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        asyncio.run(run(args.jobs, args.rounds, Path(data)))


if __name__ == "__main__":
    main()
