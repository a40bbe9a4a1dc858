"""Test helpers shared by the suites: the test Redis, a movable clock, an in-process server."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller

from jobqueue_server.runtime.valkey import EmbeddedValkey

# Point the suite at another server: a binary to start (Redis 7, another Valkey) ...
REDIS_BINARY_ENV = "JOBQ_TEST_REDIS_SERVER"
# ... or a running server, which tests that stop and restart Redis then skip.
REDIS_URL_ENV = "JOBQ_TEST_REDIS_URL"


@dataclass
class TestRedis:
    """The Redis the suite runs against, and whether the suite controls its process."""

    __test__ = False  # not a test class, despite its name

    url: str
    process: EmbeddedValkey | None

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
