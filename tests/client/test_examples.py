"""The Python example worker in clients/python/examples runs, so the docs cannot rot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from jobqueue import AsyncClient, JobState
from jobqueue_server.runtime.app import App

EXAMPLE = Path(__file__).resolve().parents[2] / "clients" / "python" / "examples" / "minimal_worker.py"


async def test_the_minimal_worker_greets_refuses_bad_input_and_stops_on_sigterm(app: App) -> None:
    target = f"127.0.0.1:{app.port}"
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        env={**os.environ, "JOBQ_TARGET": target},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with AsyncClient(target) as client:
            good = await client.enqueue("greetings", {"name": "Ada"})
            bad = await client.enqueue("greetings", {"nom": "Ada"}, max_attempts=5)
            greeted = await client.wait(good.job_id, timeout=30)
            refused = await client.wait(bad.job_id, timeout=30)
        worker.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(worker.communicate(), timeout=30)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()

    assert (greeted.state, greeted.result) == (JobState.COMPLETED, {"greeting": "Hello, Ada!", "attempt": 1})
    assert (refused.state, refused.attempts) == (JobState.DEAD, 1)
    assert worker.returncode == 0, errors.decode()
