"""A benchmark worker process: `jobqueue.Worker` with a no-op async handler that keeps score.

    python -m jobqueue_bench.noop_worker --target HOST:PORT --queue Q --concurrency C --stats FILE

It imports everything, prints "ready" and waits for a "go" line on stdin, so the
benchmark can start workers before the clock and exclude start-up from their CPU time.
Then it serves until SIGTERM, recording the wall-clock time of the first handler start and
the last handler end, the job count, and each job's latency (handler start minus the
payload's "t"). Jobs whose payload has "warmup" are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, Worker, eventloop
from jobqueue_bench.stats import WorkerStats

GRACE_PERIOD_S = 5.0
IDLE_CHECK_S = 0.1


class Recorder:
    """The handler, and the task that writes the stats file after changes."""

    def __init__(self, path: Path, flush_interval_s: float) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self.stats = WorkerStats()
        self._changed = asyncio.Event()

    async def handle(self, payload: dict[str, Any], ctx: JobContext) -> None:
        started = time.time()
        if payload.get("warmup"):
            self.stats.warmups += 1
        else:
            if self.stats.first_start is None:
                self.stats.first_start = started
            sent = payload.get("t")
            if isinstance(sent, int | float):
                self.stats.latencies_ms.append((started - sent) * 1000.0)
            self.stats.count += 1
            self.stats.last_end = time.time()
        self._changed.set()

    async def flush_forever(self, worker: Worker) -> None:
        self.stats.write(self.path, with_latencies=False)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_CHECK_S):  # also notice a new connection while idle
                    await self._changed.wait()
            if not self._changed.is_set() and self.stats.connections == worker.counters.connections:
                continue
            self._changed.clear()
            self.stats.connections = worker.counters.connections
            self.stats.write(self.path, with_latencies=False)
            if self.flush_interval_s:
                await asyncio.sleep(self.flush_interval_s)

    def write_final(self) -> None:
        self.stats.final = True
        self.stats.write(self.path, with_latencies=True)


async def serve(args: argparse.Namespace) -> None:
    recorder = Recorder(args.stats, args.flush_ms / 1000.0)
    worker = Worker(args.target, [args.queue], concurrency=args.concurrency, grace_period=GRACE_PERIOD_S)
    worker.add_handler(args.queue, recorder.handle)
    flusher = asyncio.create_task(recorder.flush_forever(worker))
    try:
        await worker.run(install_signal_handlers=True)
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        recorder.stats.connections = worker.counters.connections
        recorder.write_final()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--target", required=True, help="the server's host:port")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--concurrency", type=int, required=True, help="the Lease window")
    parser.add_argument("--stats", type=Path, required=True, help="the stats file to keep current")
    parser.add_argument("--flush-ms", type=float, default=20.0, help="least time between stats writes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="noop_worker: %(message)s")
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the benchmark gave up before starting us
    eventloop.run(serve(args))


if __name__ == "__main__":
    main()
