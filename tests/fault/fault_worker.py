"""The worker process of the fault harness: the real Python `Worker`, a handler that records.

Run as ``python -m tests.fault.fault_worker --target HOST:PORT --log FILE --index N``.

Every execution appends lines to `FILE` with one unbuffered ``write`` each (O_APPEND), so a
line is in the kernel before the next step and survives kill -9 of this process:

    S <job_id> <attempt> <pid> <unix time>     the handler started this delivery
    E <job_id> <attempt> <pid> <unix time>     the handler returned; the ack goes out next
    A <job_id> - <pid> <unix time>             the server confirmed an ack on this stream
    R <job_id> - <pid> <unix time> <reason>    the server refused an ack or fail

The result acked names the execution (pid, attempt, worker index), so the checker can tell
which delivery completed the job. A payload may ask for work (`sleep_ms`) or be a poison
pill (`poison`: "kill" ends this process with SIGKILL, "raise" always fails).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from typing import Any

from jobqueue import JobContext, Worker
from jobqueue.session import LeaseSession
from jobqueue.v1 import job_queue_service_pb2 as svc

QUEUE = "fault"


class ExecutionLog:
    """Appends one line per event with a single write(2): atomic, and kept if we are killed."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.pid = os.getpid()

    def record(self, kind: str, job_id: str, attempt: int | str, extra: str = "") -> None:
        line = f"{kind} {job_id} {attempt} {self.pid} {time.time():.4f}{' ' + extra if extra else ''}\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)


def observe_confirmations(log: ExecutionLog) -> None:
    """Records the server's answer to each ack, per job.

    The client exposes confirmations only as counters (WorkerCounters), but the checker
    needs them per job to count jobs acked successfully more than once, so this probe
    wraps the session's confirmation handler. Test code only: the client is not changed.
    """
    original = LeaseSession._confirm

    def confirm(session: LeaseSession, confirmation: svc.Confirmation) -> None:
        if confirmation.kind == svc.CONFIRMATION_KIND_ACK:
            if confirmation.status.code == 0:
                log.record("A", confirmation.job_id, "-")
            else:
                log.record("R", confirmation.job_id, "-", str(confirmation.status.code))
        original(session, confirmation)

    LeaseSession._confirm = confirm  # type: ignore[method-assign,assignment]


def make_handler(log: ExecutionLog, index: int) -> Any:
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        log.record("S", ctx.job_id, ctx.attempt)
        poison = payload.get("poison")
        if poison == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if poison == "raise":
            raise RuntimeError("poison job: this handler always fails")
        sleep_ms = payload.get("sleep_ms", 0)
        if isinstance(sleep_ms, int | float) and sleep_ms > 0:
            await asyncio.sleep(sleep_ms / 1000)
        log.record("E", ctx.job_id, ctx.attempt)
        return {"pid": log.pid, "attempt": ctx.attempt, "worker": index}

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    # Warnings (refused settlements, lost leases, reconnects) go to stderr, which the
    # harness keeps; INFO would be one line per reconnect attempt and drown them.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = ExecutionLog(args.log)
    observe_confirmations(log)
    worker = Worker(args.target, [QUEUE], concurrency=args.concurrency, grace_period=5.0)
    worker.add_handler(QUEUE, make_handler(log, args.index))
    print(f"fault worker {args.index} pid {log.pid} serving", flush=True)
    try:
        worker.run_forever()
    finally:
        log.close()


if __name__ == "__main__":
    main()
