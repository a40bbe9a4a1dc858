"""Runs documented commands the way a stranger would: in a fresh copy holding only the
protos and one example, with the toolchains found on PATH."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conformance.workers import must_run_all
from tests.strangers.blocks import ROOT, tested_block

# A fixed place per checkout, so that build caches (cargo's target folder, above all) are
# reused from one session to the next while each copy starts fresh.
BASE = Path(tempfile.gettempdir()) / f"jobqueue-strangers-{hashlib.sha256(bytes(ROOT)).hexdigest()[:8]}"
CARGO_TARGET = BASE / "cargo-target"
TOOLS = BASE / "bin"
# What a build leaves in an example's folder: never copied.
BUILD_OUTPUTS = {"target", "node_modules"}
# Where the Go block writes its stubs, should someone have run it in the repository itself.
GO_STUBS = ROOT / "examples" / "go-stubs" / "jobqueue"


def require(*tools: str) -> None:
    """Skips the test when a tool is missing, or fails it when CI wants every language."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        message = f"not installed: {', '.join(missing)}"
        if must_run_all():
            pytest.fail(message)
        pytest.skip(message)


def fresh_copy(example: str) -> Path:
    """A folder with proto/, third_party/proto/ and examples/<example>/ as in the repository."""
    copy = BASE / example
    shutil.rmtree(copy, ignore_errors=True)
    for part in (Path("proto"), Path("third_party") / "proto", Path("examples") / example):
        shutil.copytree(ROOT / part, copy / part, ignore=_left_out)
    return copy


def _left_out(folder: str, names: list[str]) -> set[str]:
    generated = {GO_STUBS.name} if Path(folder) == GO_STUBS.parent else set()
    return {name for name in names if name in BUILD_OUTPUTS} | generated


def tools_on_path() -> str:
    """PATH with TOOLS first (where GOBIN puts the Go plugins) and a protoc: the installed
    one, else a stand-in that runs grpcio-tools' (the same compiler, same arguments)."""
    TOOLS.mkdir(parents=True, exist_ok=True)
    shim = TOOLS / "protoc"
    shim.unlink(missing_ok=True)
    if shutil.which("protoc") is None:
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grpc_tools.protoc "$@"\n')
        shim.chmod(0o755)
    return f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"


async def run_block(name: str, cwd: Path, env: dict[str, str], timeout_s: float) -> str:
    """Runs the docs' block `name` in cwd with bash (stopping at the first failing command)
    without blocking the event loop that serves the test's server; returns its stdout."""
    command = ["bash", "-euo", "pipefail", "-c", tested_block(name)]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"the {name} block failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout
