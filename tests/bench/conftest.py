"""Fixtures of the `jobq bench` tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.go_tools import build_go_tools


@pytest.fixture(scope="session")
def bench_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JOBQ_BENCH_BIN folder with the Go producers built."""
    return build_go_tools(tmp_path_factory.mktemp("bench-bin"))
