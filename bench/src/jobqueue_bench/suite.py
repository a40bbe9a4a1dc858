"""The default suite of `jobq bench`, and the defaults of a single scenario (full or --quick)."""

from __future__ import annotations

from jobqueue_bench.config import DEFAULT_IDLE_SAMPLES, DEFAULT_JOBS, BenchConfig, Scenario

QUICK_JOBS = 500
QUICK_IDLE_SAMPLES = 20
QUICK_IDLE_STREAMS, QUICK_IDLE_SECONDS = 10, 1.0  # the release still takes the server's ~10 s
QUICK_RATE, QUICK_DURATION = 200, 1.0
KIB = 1024
PAYLOAD_SIZES = (100, 10 * KIB, 512 * KIB)
# Big payloads drain fewer jobs: at most this much payload data sits in Redis at once.
PAYLOAD_BUDGET_BYTES = 128 * KIB * KIB
QUICK_PAYLOAD_BUDGET_BYTES = 16 * KIB * KIB
WORKER_COUNTS = (1, 2, 4)
WINDOWS = (16, 64, 256, 1024)
SERVER_COUNTS = (1, 2)
SERVER_SWEEP_WORKERS = 2  # one worker per server when there are two


def scenario_defaults(scenario: Scenario, *, quick: bool = False) -> BenchConfig:
    """A scenario with the suite's settings (shrunk for a smoke run when `quick`)."""
    if scenario == "latency_idle":
        if quick:
            return BenchConfig(
                scenario,
                jobs=QUICK_IDLE_SAMPLES,
                idle_streams=QUICK_IDLE_STREAMS,
                idle_seconds=QUICK_IDLE_SECONDS,
            )
        return BenchConfig(scenario, jobs=DEFAULT_IDLE_SAMPLES)
    config = BenchConfig(scenario, jobs=QUICK_JOBS if quick else DEFAULT_JOBS)
    if quick and scenario == "latency_rate":
        return config.replace(rate=QUICK_RATE, duration=QUICK_DURATION)
    return config


def payload_jobs(jobs: int, payload_bytes: int, budget: int) -> int:
    return max(1, min(jobs, budget // payload_bytes))


def default_suite(*, quick: bool = False) -> list[BenchConfig]:
    """The scenarios once each, then drain swept over payload size, workers, window and servers.

    A sweep point equal to a measurement already in the list is not run twice.
    """
    core = [
        scenario_defaults("enqueue_unary", quick=quick).replace(in_flight=64),
        scenario_defaults("enqueue_batch", quick=quick).replace(batch=500),
        scenario_defaults("drain", quick=quick).replace(workers=1, concurrency=256),
        scenario_defaults("end_to_end", quick=quick),
        scenario_defaults("latency_rate", quick=quick),
        scenario_defaults("latency_idle", quick=quick),
    ]
    drain = core[2]
    budget = QUICK_PAYLOAD_BUDGET_BYTES if quick else PAYLOAD_BUDGET_BYTES
    sweeps = [
        *(drain.replace(payload_bytes=p, jobs=payload_jobs(drain.jobs, p, budget)) for p in PAYLOAD_SIZES),
        *(drain.replace(workers=w) for w in WORKER_COUNTS),
        *(drain.replace(concurrency=c) for c in WINDOWS),
        *(drain.replace(workers=SERVER_SWEEP_WORKERS, servers=k) for k in SERVER_COUNTS),
    ]
    return list(dict.fromkeys(core + sweeps))  # configs are frozen dataclasses: equal ones merge
