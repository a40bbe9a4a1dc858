"""monitoring/alerts.yml fed the metrics of a real run, checked by promtool's rule unit tests.

A metered server runs the situations the rules are for: a queue with ready jobs and no worker, a
job that ends dead, and (a second run) Redis stopped. The test scrapes the endpoint before and
after, turns every sample into a promtool input series (the two scrapes, then the last value
held; the oldest job's age grows a second per second, as it does while nobody leases), and
asserts which alerts fire, with their labels and summaries, and that no other does.

promtool comes from Debian's `prometheus` package (.ci/run installs it); elsewhere the test is
skipped unless JOBQ_REQUIRE_PROMTOOL=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from google.protobuf import duration_pb2

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream
from tests.server.test_metrics import Samples, scrape, value
from tests.support import TestRedis

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

RULES = Path(__file__).parents[2] / "monitoring" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
AGE = "jobqueue_queue_oldest_job_age_seconds"

pytestmark = pytest.mark.skipif(
    PROMTOOL is None and os.environ.get("JOBQ_REQUIRE_PROMTOOL") != "1",
    reason="promtool is not installed (apt-get install prometheus)",
)


def input_series(before: Samples, after: Samples, steps: int = 40) -> list[dict[str, str]]:
    """Each sample of the run as a series a minute apart: its value before, its value after,
    held; a queue's oldest-job age goes on growing by 60 a minute while it has ready jobs."""
    series = []
    for (name, labels), last in after.items():
        first = before.get((name, labels), 0.0 if name.endswith("_total") else last)
        grows = name == AGE and last > 0
        values = f"{first:g} {last:g}+60x{steps}" if grows else f"{first:g} {last:g}x{steps}"
        text = ", ".join(f'{key}="{val}"' for key, val in (*labels, ("instance", "server-1")))
        series.append({"series": f"{name}{{{text}}}", "values": values})
    return series


def promtool_test(tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(spec))
    promtool("test", "rules", path)


def promtool(*args: str | Path) -> None:
    assert PROMTOOL is not None
    run = subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def alert(name: str, at: str, *expected: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [
            {"exp_labels": labels, "exp_annotations": {"summary": summary}} for labels, summary in expected
        ],
    }


async def test_the_rules_fire_on_a_queue_nobody_works_and_on_dead_jobs(
    metered: App, metered_stub: Stub, tmp_path: Path
) -> None:
    stub = metered_stub
    await stub.Enqueue(svc.EnqueueRequest(queue="failing", max_attempts=1))
    for _ in range(2):
        await stub.Enqueue(svc.EnqueueRequest(queue="stuck"))
    await stub.Enqueue(svc.EnqueueRequest(queue="healthy"))
    before = await _scrape_until(
        metered, lambda s: value(s, "jobqueue_queue_jobs", queue="stuck", state="queued") == 2
    )

    failing = await LeaseStream(stub).subscribe("failing", max_in_flight=1)
    (job,) = await failing.wait_jobs(1)
    await failing.fail(job, "boom")
    await failing.wait_confirmations(1)
    await failing.close()
    healthy = await LeaseStream(stub).subscribe("healthy", max_in_flight=1)
    await healthy.ack(*await healthy.wait_jobs(1))
    await healthy.wait_confirmations(1)
    await healthy.close()
    # The gauges are read every 0.1 s: wait for a read after the last change (the healthy ack).
    after = await _scrape_until(
        metered,
        lambda s: (
            value(s, "jobqueue_queue_jobs", queue="failing", state="dead") == 1
            and value(s, "jobqueue_queue_jobs", queue="healthy", state="completed") == 1
        ),
    )
    assert value(after, "jobqueue_jobs_dead_total", queue="failing") == 1
    assert value(before, "jobqueue_jobs_dead_total", queue="failing") == 0  # the series exists at 0

    stuck = {"queue": "stuck", "severity": "warning"}
    promtool_test(
        tmp_path,
        input_series(before, after),
        [
            alert(
                "JobqueueDeadJobsRising",
                "5m",
                (
                    {"queue": "failing", "severity": "warning"},
                    "Queue failing: 1 jobs ended dead in 15 minutes (jobq dead list)",
                ),
            ),
            alert("JobqueueDeadJobsRising", "25m"),  # no new dead job for 15 minutes
            alert("JobqueueQueueTooOld", "4m"),
            alert(
                "JobqueueQueueTooOld",
                "15m",
                (stuck, "Queue stuck: its oldest ready job has waited more than 5 minutes"),
            ),
            alert("JobqueueNoWorkers", "5m"),  # not for 10 minutes yet
            alert(
                "JobqueueNoWorkers",
                "15m",
                (
                    {"queue": "stuck", "severity": "critical"},
                    "Queue stuck: 2 jobs ready and no worker took one for 10 minutes",
                ),
            ),
            alert("JobqueueRedisUnavailable", "15m"),
        ],
    )


@pytest.mark.restarts_redis
async def test_the_redis_rule_fires_when_a_server_loses_redis(
    metered: App, metered_stub: Stub, tmp_path: Path, stopped_redis: TestRedis
) -> None:
    stub = metered_stub
    stopped_redis.start()
    await stub.Enqueue(svc.EnqueueRequest(queue="q"))
    before = await _scrape_until(metered, lambda s: value(s, "jobqueue_redis_up") == 1)
    stopped_redis.stop()
    after = await _scrape_until(metered, lambda s: value(s, "jobqueue_redis_up") == 0)
    stopped_redis.start()

    promtool_test(
        tmp_path,
        input_series(before, after),
        [
            alert(
                "JobqueueRedisUnavailable",
                "3m",
                (
                    {"instance": "server-1", "severity": "critical"},
                    "jobqueue server server-1 cannot reach Redis",
                ),
            )
        ],
    )


async def _scrape_until(app: App, condition: object, timeout_s: float = 15.0) -> Samples:
    async with asyncio.timeout(timeout_s):
        while True:
            samples = await scrape(app)
            if condition(samples):  # type: ignore[operator]
                return samples
            await asyncio.sleep(0.05)


DASHBOARD = Path(__file__).parents[2] / "monitoring" / "grafana-dashboard.json"


async def test_every_dashboard_query_is_valid_promql_on_metrics_the_server_exports(
    metered: App, metered_stub: Stub, tmp_path: Path
) -> None:
    stub = metered_stub
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"].replace("$queue", ".*") for panel in dashboard["panels"] for target in panel["targets"]
    ]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q{i}", "expr": q} for i, q in enumerate(queries)]}
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    promtool("check", "rules", path)

    # A run that touches every metric: enqueue, lease, ack with a handler time, a failure.
    await stub.Enqueue(svc.EnqueueRequest(queue="q"))
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1, lease_ms=1000)
    (job,) = await stream.wait_jobs(1)
    await stream.call.write(
        svc.LeaseRequest(
            fails=[
                svc.FailRequest(
                    job_id=job.job.id,
                    lease_token=job.lease_token,
                    error="x",
                    handler_duration=duration_pb2.Duration(seconds=1),
                )
            ]
        )
    )
    await stream.wait_confirmations(1)
    await stream.close()
    exported = {
        name
        for name, _ in await _scrape_until(
            metered, lambda s: value(s, "jobqueue_queue_jobs", queue="q", state="scheduled") == 1
        )
    }
    rule_text = RULES.read_text()
    named = set(re.findall(r"\bjobqueue_[a-z_]+", " ".join(queries) + rule_text))
    assert named and named <= exported, named - exported
