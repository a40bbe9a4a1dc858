"""`jobq serve --processes N` as real processes: N servers on one port sharing one Valkey, a
server that dies started again, SIGTERM stopping them all, and the store migrated once before
the servers start."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.store import JobState
from tests.e2e.conftest import Spawn
from tests.processes import ChildProcess, children_of, gone, wait_until
from tests.server.streams import LeaseStream, payload
from tests.store.seed import seed_legacy_job
from tests.support import TestRedis

LISTENING = re.compile(r"^jobqueue listening on 127\.0\.0\.1:(?P<port>\d+) \((?P<count>\d+) processes\)$")
CONNECTIONS = 8
WAIT_S = 30.0


def server_pids(supervisor: int) -> set[int]:
    """The `python -m jobqueue_server` children of `jobq serve` (not its embedded Valkey)."""
    return {pid for pid in children_of(supervisor) if b"jobqueue_server" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # exited in between
        return b""


def channels(port: int) -> list[grpc.aio.Channel]:
    """Channels with a connection each (no shared subchannel), so the kernel spreads them."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    return [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(CONNECTIONS)]


ServeProcesses = Callable[[list[str], dict[str, str]], tuple[ChildProcess, int]]


@pytest.fixture
def serve_processes(spawn: Spawn) -> Iterator[ServeProcesses]:
    """Starts `jobq serve --processes 2 ...`; stops each with SIGTERM at the end (killed, the
    supervisor would leave its children running, holding the output pipe open)."""
    started: list[ChildProcess] = []

    def start(args: list[str], env: dict[str, str]) -> tuple[ChildProcess, int]:
        supervisor = spawn(["serve", "--host", "127.0.0.1", "--port", "0", "--processes", "2", *args], env)
        started.append(supervisor)
        listening = supervisor.wait_for_line(LISTENING.match)
        assert listening["count"] == "2"
        return supervisor, int(listening["port"])

    yield start
    for supervisor in started:
        if supervisor.process.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait()


@pytest.fixture
def two_servers(serve_processes: ServeProcesses, tmp_path: Path) -> tuple[ChildProcess, int]:
    return serve_processes(["--data-dir", str(tmp_path)], {})


async def test_two_processes_on_one_port_serve_one_queue(two_servers: tuple[ChildProcess, int]) -> None:
    supervisor, port = two_servers
    assert len(server_pids(supervisor.process.pid)) == 2
    producers = channels(port)
    try:
        ids = [
            (
                await svc_grpc.JobQueueServiceStub(channel).Enqueue(
                    svc.EnqueueRequest(queue="q", payload=payload(n=n))
                )
            ).job_id
            for n, channel in enumerate(producers)
        ]
        # Whichever process a worker's connection lands on, it gets the jobs every process took.
        stream = await LeaseStream(svc_grpc.JobQueueServiceStub(producers[0])).subscribe(
            "q", max_in_flight=16
        )
        leased = await stream.wait_jobs(len(ids))
        await stream.close()
    finally:
        for channel in producers:
            await channel.close()
    assert sorted(job.job.id for job in leased) == sorted(ids)


async def test_a_server_process_that_dies_is_started_again(two_servers: tuple[ChildProcess, int]) -> None:
    supervisor, port = two_servers
    victim = min(server_pids(supervisor.process.pid))
    os.kill(victim, signal.SIGKILL)

    supervisor.wait_for_text("exited with -9; starting it again")
    wait_until(lambda: len(server_pids(supervisor.process.pid) - {victim}) == 2, "a new server process")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await svc_grpc.JobQueueServiceStub(channel).Enqueue(svc.EnqueueRequest(queue="q"))
    assert response.job_id.startswith("q:")


def test_sigterm_stops_every_server_process_and_the_embedded_valkey(
    two_servers: tuple[ChildProcess, int],
) -> None:
    supervisor, _ = two_servers
    children = children_of(supervisor.process.pid)
    assert len(children) == 3  # two servers and Valkey

    supervisor.send_signal(signal.SIGTERM)

    assert supervisor.wait() == 0, supervisor.output
    assert all(gone(pid) for pid in children)


async def test_the_store_is_migrated_once_before_the_server_processes_start(
    serve_processes: ServeProcesses, test_redis: TestRedis, key_prefix: str
) -> None:
    redis = Redis.from_url(test_redis.url)
    now = int(time.time() * 1000)
    queued = [
        await seed_legacy_job(redis, key_prefix, JobState.QUEUED, now, with_wire=False) for _ in range(5)
    ]
    supervisor, port = serve_processes(["--redis-url", test_redis.url], {"JOBQ_KEY_PREFIX": key_prefix})

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = svc_grpc.JobQueueServiceStub(channel)
        jobs = [(await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job for job_id in queued]
    marker = await redis.get(f"{key_prefix}:format")
    await redis.aclose()

    assert [job.state for job in jobs] == [job_pb2.JOB_STATE_QUEUED] * 5
    assert marker == b"2"
    moved = [n for n, line in enumerate(supervisor.lines) if "store: moved 5 jobs" in line]
    serving = [n for n, line in enumerate(supervisor.lines) if "jobqueue server listening" in line]
    assert len(moved) == 1 and len(serving) == 2 and moved[0] < min(serving), supervisor.output


def _two_free_ports() -> int:
    """A port P with P + 1 free too (each process serves its metrics on P + its index)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two free ports in a row")


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_each_process_serves_its_own_metrics(serve_processes: ServeProcesses, tmp_path: Path) -> None:
    metrics_port = _two_free_ports()
    _, port = serve_processes(["--data-dir", str(tmp_path), "--metrics-port", str(metrics_port)], {})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await svc_grpc.JobQueueServiceStub(channel).Enqueue(svc.EnqueueRequest(queue="q"))

    scraped = [await asyncio.to_thread(_metrics, metrics_port + offset) for offset in (0, 1)]

    assert [s["jobqueue_redis_up"] for s in scraped] == [1, 1]
    # Counted by the one process that took the call, and exported by it alone.
    assert sorted(s.get("jobqueue_jobs_enqueued_total", 0) for s in scraped) == [0, 1]
