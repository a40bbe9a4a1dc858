"""Store-suite fixtures on top of the suite-wide ones in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import Store, StoreConfig

MakeStore = Callable[..., Store]


@pytest.fixture
def make_store(redis: Redis, key_prefix: str, clock: ManualClock) -> MakeStore:
    """Builds a store on the test's prefix and clock with some StoreConfig fields overridden."""

    def build(**overrides: int) -> Store:
        return Store(redis, StoreConfig(key_prefix=key_prefix, **overrides), clock=clock)

    return build
