"""Where the outside producers live: the Go binaries and the TypeScript client.

`bench/run` builds them (bench/.bin/loadgen, bench/.bin/enqueue-load, clients/node/dist) and
says where through JOBQ_BENCH_BIN and JOBQ_BENCH_NODE_CLIENT; run by hand from a checkout,
`jobq bench` looks in the checkout's own bench/.bin and clients/node.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BIN_ENV = "JOBQ_BENCH_BIN"
NODE_CLIENT_ENV = "JOBQ_BENCH_NODE_CLIENT"
# bench/src/jobqueue_bench/tools.py: an editable install sits in the checkout.
CHECKOUT = Path(__file__).resolve().parents[3]
NODE_SCRIPT = Path(__file__).resolve().with_name("enqueue_node.mjs")
# The command that builds each Go binary, run from the checkout.
BUILD = {
    "loadgen": "go build -C bench/loadgen -o ../.bin/loadgen .",
    "enqueue-load": "go build -C clients/go -o ../../bench/.bin/enqueue-load ./cmd/enqueue-load",
}


class ToolMissing(RuntimeError):
    """An outside producer is not built (or not found)."""


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_ENV) or CHECKOUT / "bench" / ".bin")


def go_binary(name: str) -> Path:
    """bench/loadgen or clients/go/cmd/enqueue-load, built; ToolMissing says how to build it."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ToolMissing(
            f"{path} is missing: bench/run builds it, or build it by hand in the checkout with "
            f"`{BUILD[name]}` (or set {BIN_ENV} to the folder that holds it)"
        )
    return path


def node_client() -> Path:
    """The TypeScript client's folder, built (dist/) with its node_modules."""
    folder = Path(os.environ.get(NODE_CLIENT_ENV) or CHECKOUT / "clients" / "node")
    needed = ("dist/index.js", "node_modules/@grpc/grpc-js")
    missing = [part for part in needed if not (folder / part).exists()]
    if missing:
        raise ToolMissing(
            f"{folder} lacks {' and '.join(missing)}: bench/run builds it, or run "
            f"`npm --prefix {folder} ci && npm --prefix {folder} run build` "
            f"(or set {NODE_CLIENT_ENV} to a built client)"
        )
    return folder


def node() -> Path:
    found = shutil.which("node")
    if found is None:
        raise ToolMissing("node is not on PATH (the TypeScript client needs Node 20 or later)")
    return Path(found)
