"""docker-compose.cluster.yml: its wiring (no Docker engine runs here), and the topology it
describes run as local processes: two `jobq serve` on a local Valkey Cluster, a worker on one,
a producer on the other."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobqueue import AsyncClient, JobContext, Worker
from tests.cluster import LocalCluster
from tests.processes import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
NODES = ["valkey-1", "valkey-2", "valkey-3"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    return document


def test_the_servers_use_every_node_of_the_cluster_the_init_step_creates(compose: dict[str, Any]) -> None:
    services = compose["services"]
    created = re.findall(r"(valkey-\d):6379", " ".join(services["cluster-init"]["command"]))
    assert created == NODES
    for name in ("server-1", "server-2"):
        url = services[name]["environment"]["JOBQ_REDIS_URL"]
        assert url == "redis+cluster://" + ",".join(f"{node}:6379" for node in NODES)
        assert services[name]["depends_on"]["cluster-init"]["condition"] == "service_completed_successfully"
    for node in NODES:
        command = services[node]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_clients_reach_both_servers_through_one_address(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nginx = compose["configs"]["nginx-grpc"]["content"]
    assert re.findall(r"server (server-\d):50051;", nginx) == ["server-1", "server-2"]
    assert "grpc_pass grpc://jobq;" in nginx
    assert services["worker"]["environment"]["JOBQ_TARGET"] == "grpc:50051"
    assert services["grpc"]["ports"] == ["127.0.0.1:50051:50051"]
    assert not any("ports" in services[name] for name in ("server-1", "server-2", *NODES))


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path_factory.mktemp("cluster"), replicas_each=0).start()
    yield started
    started.stop()


async def test_a_job_enqueued_on_one_server_is_run_by_a_worker_on_the_other(
    local_cluster: LocalCluster,
) -> None:
    env = {"JOBQ_KEY_PREFIX": "compose"}
    servers = [
        await asyncio.to_thread(ServeProcess, ["--redis-url", local_cluster.url], env) for _ in range(2)
    ]
    ran: list[str] = []

    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        ran.append(ctx.job_id)
        return {}

    worker = Worker(servers[0].target, handlers={"emails": handle, "images": handle})
    running = asyncio.create_task(worker.run())
    try:
        async with AsyncClient(servers[1].target) as producer:
            ids = [
                (await producer.enqueue(q, {"n": n})).job_id for n in range(5) for q in ("emails", "images")
            ]
            finished = [await producer.wait(job_id, timeout=20) for job_id in ids]
    finally:
        worker.stop(now=True)
        await running
        for server in servers:
            server.close()
    assert [job.state.value for job in finished] == ["completed"] * len(ids)
    assert sorted(ran) == sorted(ids)
