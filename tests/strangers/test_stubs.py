"""The documented commands for Go, Node and Rust, run as written in a fresh copy of the protos
and the example, build a program that calls the real server: it enqueues a job, which the
test reads back, and decodes the error details of a refused call."""

from __future__ import annotations

import pytest

from jobqueue import AsyncClient, JobState
from tests.strangers.scratch import CARGO_TARGET, TOOLS, fresh_copy, require, run_block, tools_on_path

REFUSAL = "refused code 3 reason INVALID_ARGUMENT field job_id"


async def assert_enqueued_and_refused(stdout: str, client: AsyncClient, greeting: str) -> None:
    """The program's three lines (enqueued, state, refused) tell the truth about the server."""
    lines = [line for line in stdout.splitlines() if line.startswith(("enqueued ", "state ", "refused "))]
    assert len(lines) == 3, stdout
    job_id = lines[0].removeprefix("enqueued ")
    job = await client.get(job_id)

    assert lines[1:] == ["state JOB_STATE_QUEUED", REFUSAL]
    assert (job.queue, job.state, job.payload) == ("stubs-demo", JobState.QUEUED, {"greeting": greeting})


@pytest.mark.timeout(600)
async def test_the_go_commands_generate_stubs_that_call_the_server(client: AsyncClient, target: str) -> None:
    require("go")
    copy = fresh_copy("go-stubs")
    env = {"JOBQ_TARGET": target, "GOBIN": str(TOOLS), "PATH": tools_on_path()}

    stdout = await run_block("go", copy, env, timeout_s=540)

    await assert_enqueued_and_refused(stdout, client, "hello from Go")


@pytest.mark.timeout(600)
async def test_the_node_commands_load_the_protos_and_call_the_server(
    client: AsyncClient, target: str
) -> None:
    require("node", "npm")
    copy = fresh_copy("node-stubs")

    stdout = await run_block("node", copy, {"JOBQ_TARGET": target}, timeout_s=540)

    await assert_enqueued_and_refused(stdout, client, "hello from Node")


# A cold build compiles tonic and tokio (about a minute on two cores, more while the machine is
# busy); CARGO_TARGET lives on between sessions, so later runs only run the program.
@pytest.mark.timeout(1200)
async def test_the_rust_commands_build_stubs_that_call_the_server(client: AsyncClient, target: str) -> None:
    require("cargo")
    copy = fresh_copy("rust-stubs")
    env = {"JOBQ_TARGET": target, "CARGO_TARGET_DIR": str(CARGO_TARGET)}

    stdout = await run_block("rust", copy, env, timeout_s=1140)

    await assert_enqueued_and_refused(stdout, client, "hello from Rust")
