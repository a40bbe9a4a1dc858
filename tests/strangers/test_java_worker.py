"""The documented Maven build, run as written in a fresh copy of the protos and the example,
makes a Java worker that takes a job from the real server, acks it with its echo, and drains
on SIGTERM.
(The conformance kit runs the whole of tests/conformance against the same worker.)"""

from __future__ import annotations

import signal

import pytest

from jobqueue import AsyncClient, JobState
from tests.conformance.process import WorkerProcess
from tests.strangers.scratch import fresh_copy, require, run_block


@pytest.mark.timeout(900)
async def test_the_maven_commands_build_a_worker_that_runs_jobs(client: AsyncClient, target: str) -> None:
    require("java", "mvn")
    copy = fresh_copy("java-worker")
    await run_block("java", copy, {}, timeout_s=840)
    jar = copy / "examples" / "java-worker" / "target" / "jobqueue-java-worker.jar"

    worker = WorkerProcess(
        ["java", "-jar", str(jar)], target=target, queue="stubs-demo", concurrency=2, worker_id="stranger"
    )
    try:
        await worker.line("READY")
        job = await client.enqueue("stubs-demo", {"action": "echo"})
        done = await client.wait(job.job_id, timeout=30)
        worker.signal(signal.SIGTERM)
        exit_code = await worker.exit_code()
    finally:
        worker.stop()

    assert done.state == JobState.COMPLETED
    assert done.result is not None
    assert (done.result["job_id"], done.result["worker_id"]) == (job.job_id, "stranger")
    assert exit_code == 0, worker.output
