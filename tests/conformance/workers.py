"""The conformance workers the kit runs, one per language, and how to start them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GO_CLIENT = ROOT / "clients" / "go"
NODE_CLIENT = ROOT / "clients" / "node"
JAVA_WORKER = ROOT / "examples" / "java-worker"
# CI sets this so that a worker that cannot be built fails the run instead of skipping.
REQUIRE_ALL_ENV = "JOBQ_CONFORMANCE_REQUIRE_ALL"


class WorkerUnavailable(Exception):
    """The toolchain or build of a language's worker is missing here."""


def python_command(_: Path) -> list[str]:
    return [sys.executable, "-m", "tests.conformance.python_worker"]


def go_command(build_dir: Path) -> list[str]:
    if shutil.which("go") is None or not (GO_CLIENT / "go.mod").exists():
        raise WorkerUnavailable("go or clients/go is missing")
    binary = build_dir / "go-conformance-worker"
    if not binary.exists():
        subprocess.run(
            ["go", "build", "-o", str(binary), "./cmd/conformance-worker"], cwd=GO_CLIENT, check=True
        )
    return [str(binary)]


def node_command(_: Path) -> list[str]:
    script = NODE_CLIENT / "dist" / "conformance-worker.js"
    if shutil.which("node") is None or not script.exists():
        raise WorkerUnavailable(
            "node or clients/node/dist is missing (npm ci && npm run build in clients/node)"
        )
    return ["node", str(script)]


def java_command(_: Path) -> list[str]:
    """Built in place with the command docs/workers.md gives (Maven skips what is up to date)."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        raise WorkerUnavailable("java or mvn is missing")
    subprocess.run(["mvn", "-q", "-B", "package"], cwd=JAVA_WORKER, check=True)
    return ["java", "-jar", str(JAVA_WORKER / "target" / "jobqueue-java-worker.jar")]


WORKERS = {"python": python_command, "go": go_command, "node": node_command, "java": java_command}


def must_run_all() -> bool:
    return os.environ.get(REQUIRE_ALL_ENV) == "1"
