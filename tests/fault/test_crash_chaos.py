"""The CI chaos profile: 20,000 jobs through kills, pauses and cut links, nothing lost.

The seed is fixed so CI is reproducible; set JOBQ_FAULT_SEED to try others. The report
(table and JSON) is printed, so a failing run shows its seed and figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fault import scenario
from tests.fault.profiles import CI
from tests.fault.run import table

pytestmark = pytest.mark.fault

DEFAULT_SEED = 20_240
SEED_ENV = "JOBQ_FAULT_SEED"


@pytest.mark.timeout(600)
async def test_ci_profile_loses_nothing_and_completes_nothing_twice(tmp_path: Path) -> None:
    seed = int(os.environ.get(SEED_ENV, DEFAULT_SEED))
    report = await scenario.run(CI, seed, tmp_path)
    print(table(report))
    (tmp_path / "report.json").write_text(json.dumps(report, indent=2, default=str))

    assert report["enqueues_acknowledged"] == CI.jobs
    assert report["lost"] == 0, report["examples"]["lost"]
    assert report["left_active"] == 0, report["examples"]["left_active"]
    assert report["double_completed"] == 0, report["examples"]["double_completed"]
    assert report["failures"] == [], f"seed {seed}: {report['failures']}"
