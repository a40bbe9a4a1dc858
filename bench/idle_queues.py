"""What idle queues cost a server: its CPU with many registered queues and nothing to do, and the
time of one Stats page.

    .venv/bin/python bench/idle_queues.py --queues 10000 --seconds 20

Starts `jobq serve` on an embedded Valkey in a temporary folder, creates QUEUES queues with one
queued job each (EnqueueBatch of 1,000), lets the server settle for 5 s, then prints the server
process's CPU over SECONDS (from /proc, user + system) and how long `Stats` takes for its first page.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

BATCH = 1000
SETTLE_S = 5.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "jobqueue_cli", "serve", "--port", "0", "--data-dir", data,
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            port = int(re.search(r":(\d+) ", server.stdout.readline()).group(1))  # type: ignore[union-attr]
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = svc_grpc.JobQueueServiceStub(channel)
                for start in range(0, args.queues, BATCH):
                    names = [f"idle-{n}" for n in range(start, min(start + BATCH, args.queues))]
                    stub.EnqueueBatch(
                        svc.EnqueueBatchRequest(requests=[svc.EnqueueRequest(queue=q) for q in names])
                    )
                time.sleep(SETTLE_S)
                began = time.monotonic()
                page = stub.Stats(svc.StatsRequest())
                stats_s = time.monotonic() - began
            cpu, wall = cpu_seconds(server.pid), time.monotonic()
            time.sleep(args.seconds)
            used = (cpu_seconds(server.pid) - cpu) / (time.monotonic() - wall)
            print(
                f"{args.queues:,} idle queues: server CPU {100 * used:.1f} % of a core in {args.seconds:g} s"
            )
            print(f"Stats, first page: {len(page.queues):,} queues in {stats_s * 1000:.0f} ms")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
