"""Wake-ups on a cluster: plain pub/sub (PUBLISH, carried to every node by the cluster bus) or
sharded pub/sub (SPUBLISH, kept to the shard of the channel's slot), Valkey CPU per message.

On a local cluster of 3 primaries (no replicas), SUBSCRIBERS subscribers stand for the servers.
Plain: each holds one connection, to a node of its own, subscribed to the channels of 3 queues
(one per primary), as `jobq serve` does today. Sharded: each holds one connection per node,
subscribed (SSUBSCRIBE) to the channels that node serves. A script on each queue's node sends
MESSAGES wake-ups per queue, as the enqueue script does (PUBLISH or SPUBLISH), pipelined. The
benchmark reads each node's CPU time around the sends and prints µs per wake-up, checking that
every subscriber got every message. docs/scaling.md quotes the output.

    .venv/bin/python bench/cluster_wakeups.py            # --messages 50000 --subscribers 4
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/cluster.py: the same local cluster as the test suite

from bench.scaling import cpu_seconds, queue_names  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402

# What the enqueue script does with its wake-up: one pub/sub command on the queue's channel.
SEND = "return redis.call(ARGV[1], KEYS[1], 'ready')"
CHUNK = 1000


class Listener(threading.Thread):
    """One subscriber connection, counting what it receives until told to stop."""

    def __init__(self, port: int, channels: list[str], sharded: bool) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port)
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        if sharded:
            self.pubsub.ssubscribe(*channels)
        else:
            self.pubsub.subscribe(*channels)
        self.kind = "smessage" if sharded else "message"
        self.wanted = len(channels)
        self.subscribed = 0
        self.received = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            if message["type"] == self.kind:
                self.received += 1
            else:
                self.subscribed += 1

    def close(self) -> None:
        self.done.set()
        self.join(5)
        self.pubsub.close()
        self.client.close()


def listen(cluster: LocalCluster, channels: dict[str, str], sharded: bool, servers: int) -> list[Listener]:
    """The servers' subscriptions, confirmed."""
    owner = {queue: cluster.primary_for(f"{{{queue}}}").port for queue in channels}
    ports = [node.port for node in cluster.nodes]
    listeners: list[Listener] = []
    for index in range(servers):
        if sharded:
            for port in sorted(set(owner.values())):
                mine = [channels[q] for q in channels if owner[q] == port]
                listeners.append(Listener(port, mine, sharded=True))
        else:
            listeners.append(Listener(ports[index % len(ports)], list(channels.values()), sharded=False))
    for listener in listeners:
        listener.start()
    deadline = time.monotonic() + 10
    while any(listener.subscribed < listener.wanted for listener in listeners):
        assert time.monotonic() < deadline, "the subscriptions were not confirmed"
        time.sleep(0.01)
    return listeners


def send(cluster: LocalCluster, channels: dict[str, str], command: str, messages: int) -> None:
    """`messages` wake-ups per queue, each by a script on the queue's node."""
    for queue, channel in channels.items():
        with redis.Redis(port=cluster.primary_for(f"{{{queue}}}").port) as client:
            sha = client.script_load(SEND)
            for _ in range(0, messages, CHUNK):
                with client.pipeline(transaction=False) as pipe:
                    for _ in range(CHUNK):
                        pipe.evalsha(sha, 1, channel, command)
                    pipe.execute()


def measure(cluster: LocalCluster, sharded: bool, servers: int, messages: int) -> str:
    channels = {queue: f"jq:{{{queue}}}:signal" for queue in queue_names(cluster)}
    listeners = listen(cluster, channels, sharded, servers)
    pids = {node.port: node.pid for node in cluster.nodes if node.pid}
    before = {port: cpu_seconds(pid) for port, pid in pids.items()}
    started = time.monotonic()
    send(cluster, channels, "SPUBLISH" if sharded else "PUBLISH", messages)
    expected = messages * len(channels) * servers
    while sum(listener.received for listener in listeners) < expected and time.monotonic() - started < 60:
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    sent = messages * len(channels)
    node_us = [(cpu_seconds(pid) - before[port]) / sent * 1e6 for port, pid in pids.items()]
    received = sum(listener.received for listener in listeners)
    for listener in listeners:
        listener.close()
    kind = "sharded (SPUBLISH)" if sharded else "plain (PUBLISH)"
    each = ", ".join(f"{us:.2f}" for us in node_us)
    return (
        f"| {kind} | {servers} | {len(listeners)} | {each} | {sum(node_us):.2f} "
        f"| {received:,} of {expected:,} | {sent / elapsed:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50_000, help="wake-ups per queue")
    parser.add_argument("--subscribers", type=int, default=4, help="servers listening")
    args = parser.parse_args()
    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}\n")
    print(
        "| wake-ups | servers | connections | Valkey CPU µs per wake-up, each node | all nodes "
        "| received | sent/s |"
    )
    print("|---|---:|---:|---|---:|---|---:|")
    with tempfile.TemporaryDirectory(prefix="jobq-wakeups-") as folder:
        cluster = LocalCluster(Path(folder), primaries=3, replicas_each=0).start()
        try:
            for sharded in (False, True):
                print(measure(cluster, sharded, args.subscribers, args.messages), flush=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
