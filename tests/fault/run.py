"""The fault-injection run from the command line: prints a report table and writes JSON.

    python -m tests.fault.run --profile ci --seed 7
    python -m tests.fault.run --profile gate --seed 7 --json bench/fault/gate-7.json

Without --seed a random one is drawn and printed first, so any run can be replayed. The exit
status is 1 when a criterion failed (lost, double-completed, left active, unexplained
duplicates, slow drain).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.fault import scenario
from tests.fault.profiles import PROFILES

DEFAULT_JSON_DIR = Path("bench/fault")
# Nested values that the table leaves to the JSON file.
NOT_IN_TABLE = ("fault_events", "examples", "failures")


def table(report: dict[str, Any]) -> str:
    rows = [(name, value) for name, value in report.items() if name not in NOT_IN_TABLE]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {_cell(value)}" for name, value in rows]
    verdict = "PASS" if not report["failures"] else "FAIL: " + "; ".join(report["failures"])
    return "\n".join([*lines, "", verdict])


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="default: bench/fault/<profile>-<seed>.json")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and Valkey data in this folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each fault as it is applied")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    print(f"fault run: profile {args.profile}, seed {seed}", flush=True)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    profile = PROFILES[args.profile]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(scenario.run(profile, seed, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="jobq-fault-") as work_dir:
            report = asyncio.run(scenario.run(profile, seed, Path(work_dir)))
    print(table(report))
    out = args.json or DEFAULT_JSON_DIR / f"{profile.name}-{seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report written to {out}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
