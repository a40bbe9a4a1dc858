"""Fixtures of the driver's tests: the Go producers, as `jobq bench`'s tests build them."""

from __future__ import annotations

from tests.bench.conftest import bench_bin

__all__ = ["bench_bin"]
