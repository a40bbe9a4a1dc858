"""Runs measurements: one deployment for all of them, a fresh queue and fresh workers for each."""

from __future__ import annotations

import asyncio
import itertools
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from jobqueue.errors import JobQueueError
from jobqueue_bench.config import BenchConfig
from jobqueue_bench.deployment import Deployment
from jobqueue_bench.external import ToolFailed
from jobqueue_bench.fleet import BenchTimeout
from jobqueue_bench.machine import versions
from jobqueue_bench.processes import ChildFailed
from jobqueue_bench.producer import EnqueueFailed
from jobqueue_bench.results import Result
from jobqueue_bench.scenarios import RUNNERS, Run
from jobqueue_bench.tools import ToolMissing

logger = logging.getLogger(__name__)

# Failures we expect and explain in one line; anything else also logs its traceback. Either
# way the measurement is reported as failed and the next one runs.
EXPECTED_ERRORS = (BenchTimeout, ChildFailed, EnqueueFailed, JobQueueError, OSError, ToolFailed, ToolMissing)


def run_measurements(
    configs: Sequence[BenchConfig],
    redis_url: str | None,
    timeout: float,
    on_start: Callable[[BenchConfig], None] = lambda _: None,
) -> tuple[list[Result], dict[str, str]]:
    """Starts Redis (unless given) and the servers, runs each measurement, stops everything.

    Measurements in a row with the same server processes share one deployment. Returns the
    results in order, and the software versions.
    """
    results: list[Result] = []
    found: dict[str, str] = {}
    for processes, group in itertools.groupby(configs, key=lambda c: c.processes):
        batch = list(group)
        deployment = Deployment.start(
            redis_url, max(c.servers for c in batch), max(c.concurrency for c in batch), processes
        )
        try:
            assert deployment.probe is not None
            found = versions(deployment.probe.server_version())
            results += asyncio.run(_run_all(deployment, batch, timeout, on_start))
        finally:
            deployment.close()
    for result in results:
        result.versions = found
    return results, found


async def _run_all(
    deployment: Deployment,
    configs: Sequence[BenchConfig],
    limit_s: float,
    on_start: Callable[[BenchConfig], None],
) -> list[Result]:
    results = []
    for index, config in enumerate(configs):
        on_start(config)
        deployment.reset()
        queue = f"bench.{config.scenario}.{index + 1}"
        with tempfile.TemporaryDirectory(prefix="jobq-bench-workers-") as folder:
            run = Run(deployment, config, queue, Path(folder), limit_s)
            try:
                result = await RUNNERS[config.scenario](run)
                result.extra["server_processes"] = len(run.server_pids())
                results.append(result)
            except Exception as error:  # reported in the result; the suite goes on
                results.append(Result(config, error=_describe(error)))
                logger.error(
                    "%s failed: %s", config.scenario, results[-1].error, exc_info=not _expected(error)
                )
    return results


def _leaves(error: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups, or the error itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _expected(error: BaseException) -> bool:
    return all(isinstance(leaf, EXPECTED_ERRORS) for leaf in _leaves(error))


def _describe(error: BaseException) -> str:
    """The first error and how many more there were (a TaskGroup gathers them all)."""
    leaves = _leaves(error)
    more = f" (and {len(leaves) - 1} more errors)" if len(leaves) > 1 else ""
    return f"{type(leaves[0]).__name__}: {leaves[0]}{more}"
