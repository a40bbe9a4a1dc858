"""Facts about the machine and the software versions, recorded with every result file."""

from __future__ import annotations

import importlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("jobqueue-server", "jobqueue-client", "grpcio", "protobuf", "redis", "hiredis")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_bytes() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return None


def protobuf_backend() -> str:
    """ "upb", "cpp" or "python": protobuf's speed depends on it."""
    try:
        module = importlib.import_module("google.protobuf.internal.api_implementation")
    except ImportError:
        return "unknown"
    return str(module.Type())


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(redis_server: str) -> dict[str, str]:
    """The versions that shape the figures: ours, gRPC, protobuf (and its backend), redis-py,
    hiredis, Python and the Redis server ("valkey 9.1.2")."""
    found = {package: _version(package) for package in PACKAGES}
    found["protobuf"] += f" ({protobuf_backend()})"
    found["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    found["redis-server"] = redis_server
    return found


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "kernel": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
