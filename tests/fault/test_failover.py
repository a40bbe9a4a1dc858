"""Failovers under load, on Redis Cluster and behind Sentinel: the primary serving the queue is
killed twice while jobs are enqueued and worked at DURABILITY_REPLICATED; its replica takes over,
the servers find it by themselves, and the checker finds nothing acknowledged lost and nothing
completed twice.

`python -m tests.fault.run --profile cluster-failover` runs the same outside pytest, and with
JOBQ_DEFAULT_DURABILITY=applied in the profile's server_env it measures what the default level
loses in the same failovers (docs/durability.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fault import scenario
from tests.fault.profiles import CLUSTER_FAILOVER, SENTINEL_FAILOVER, Profile
from tests.fault.run import table

pytestmark = pytest.mark.fault

DEFAULT_SEED = 15
SEED_ENV = "JOBQ_FAULT_SEED"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("profile", [CLUSTER_FAILOVER, SENTINEL_FAILOVER], ids=lambda p: p.name)
async def test_a_primary_killed_under_load_loses_no_replicated_job(profile: Profile, tmp_path: Path) -> None:
    seed = int(os.environ.get(SEED_ENV, DEFAULT_SEED))
    report = await scenario.run(profile, seed, tmp_path)
    print(table(report))
    (tmp_path / "report.json").write_text(json.dumps(report, indent=2, default=str))

    assert report["faults"].get("primary_kill") == 2
    assert report["enqueues_acknowledged"] == profile.jobs
    assert report["lost"] == 0, report["examples"]["lost"]
    assert report["left_active"] == 0, report["examples"]["left_active"]
    assert report["double_completed"] == 0, report["examples"]["double_completed"]
    assert report["failures"] == [], f"seed {seed}: {report['failures']}"
