"""The outside producers' Go binaries, built once per test session the way bench/run builds them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600.0  # a cold module cache compiles grpc


def go() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None
    )
    if found is None:
        if os.environ.get("JOBQ_REQUIRE_TOOLS") == "1":
            raise AssertionError("go is missing: the bench's outside producers need it")
        pytest.skip("go is not installed (bench/loadgen and clients/go/cmd/enqueue-load need it)")
    return found


def build_go_tools(folder: Path) -> Path:
    """bench/loadgen and clients/go's enqueue-load, built into `folder` (JOBQ_BENCH_BIN)."""
    for source, package, name in (
        ("bench/loadgen", ".", "loadgen"),
        ("clients/go", "./cmd/enqueue-load", "enqueue-load"),
    ):
        subprocess.run(
            [go(), "build", "-C", str(ROOT / source), "-o", str(folder / name), package],
            check=True, timeout=BUILD_TIMEOUT_S, capture_output=True,
        )  # fmt: skip
    return folder
