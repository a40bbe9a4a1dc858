"""Test helpers shared by the suites: the test Redis, a movable clock, an in-process server."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiosmtpd.controller import Controller

from jobqueue_server.runtime.valkey import EmbeddedValkey

if TYPE_CHECKING:
    from tests.cluster import LocalCluster
    from tests.sentinel import LocalSentinel

# Point the suite at another server: a binary to start (Redis 7, another Valkey) ...
REDIS_BINARY_ENV = "JOBQ_TEST_REDIS_SERVER"
# ... or a running server, which tests that stop and restart Redis then skip ...
REDIS_URL_ENV = "JOBQ_TEST_REDIS_URL"
# ... or, set to 1, a local Valkey Cluster of 3 primaries with a replica each (tests/cluster.py)
REDIS_CLUSTER_ENV = "JOBQ_TEST_REDIS_CLUSTER"
# ... or, set to 1, a primary, a replica and 3 sentinels (tests/sentinel.py).
REDIS_SENTINEL_ENV = "JOBQ_TEST_REDIS_SENTINEL"


def until(condition: Callable[[], object], what: str, timeout_s: float = 30.0, every_s: float = 0.05) -> None:
    """Waits (blocking) until `condition()` is true: a local deployment coming up or settling."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout_s} s: {what}")
        time.sleep(every_s)


def not_on_cluster(reason: str) -> pytest.MarkDecorator:
    """Skips a test when the suite runs on the local cluster (JOBQ_TEST_REDIS_CLUSTER=1)."""
    return pytest.mark.skipif(os.environ.get(REDIS_CLUSTER_ENV) == "1", reason=reason)


def without_replicas(reason: str) -> pytest.MarkDecorator:
    """Skips a test when the suite's Redis has replicas (the local cluster or sentinel deployment)."""
    replicated = os.environ.get(REDIS_CLUSTER_ENV) == "1" or os.environ.get(REDIS_SENTINEL_ENV) == "1"
    return pytest.mark.skipif(replicated, reason=reason)


@dataclass
class TestRedis:
    """The Redis the suite runs against, and whether the suite controls its process."""

    __test__ = False  # not a test class, despite its name

    url: str
    process: EmbeddedValkey | None
    #: The local cluster or sentinel deployment the suite started, stopped at the end.
    cluster: LocalCluster | LocalSentinel | None = None

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.cluster is not None:
            self.cluster.stop()

    @property
    def controllable(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        assert self.process is not None
        self.process.stop()

    def start(self) -> None:
        assert self.process is not None
        self.process.start()


def start_test_redis(data_dir: Path) -> TestRedis:
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        return TestRedis(url, None)
    if os.environ.get(REDIS_CLUSTER_ENV) == "1":
        from tests.cluster import LocalCluster

        cluster = LocalCluster(data_dir).start()
        return TestRedis(cluster.url, None, cluster)
    if os.environ.get(REDIS_SENTINEL_ENV) == "1":
        from tests.sentinel import LocalSentinel

        deployment = LocalSentinel(data_dir).start()
        return TestRedis(deployment.url, None, deployment)
    binary = os.environ.get(REDIS_BINARY_ENV)
    process = EmbeddedValkey(data_dir, binary=Path(binary) if binary else None)
    process.start()
    return TestRedis(process.url, process)


class EphemeralPortController(Controller):
    """aiosmtpd's Controller on a port the OS picks: it assumes a fixed one when it self-tests."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]
