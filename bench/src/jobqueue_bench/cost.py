"""The cost of a measurement per job: Redis commands and CPU, servers' CPU, workers' CPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from jobqueue_bench.measure import CpuMeter
from jobqueue_bench.redis_cost import RedisCounters, RedisProbe

MICROS = 1_000_000


@dataclass(frozen=True)
class Cost:
    """bench/PROTOCOL.md's cost object; None where it was not measured."""

    redis_commands_per_job: float | None = None
    redis_script_calls_per_job: float | None = None
    redis_cpu_us_per_job: float | None = None
    server_cpu_us_per_job: float | None = None
    worker_cpu_us_per_job: float | None = None

    def document(self) -> dict[str, Any]:
        return {name: None if value is None else round(value, 2) for name, value in asdict(self).items()}


def _per_job(value: float | None, jobs: int, scale: float = 1.0) -> float | None:
    return None if value is None or jobs <= 0 else value * scale / jobs


class CostMeter:
    """Readings of Redis and of our servers' and workers' CPU at `start` and `stop`."""

    def __init__(self, probe: RedisProbe, server_pids: Sequence[int], worker_pids: Sequence[int]) -> None:
        self._probe = probe
        self._servers = CpuMeter(server_pids)
        self._workers = CpuMeter(worker_pids)
        self._before: RedisCounters | None = None

    def start(self) -> None:
        self._before = self._probe.counters()
        self._servers.start()
        self._workers.start()

    def stop(self, jobs: int) -> Cost:
        servers, workers = self._servers.stop(), self._workers.stop()
        assert self._before is not None, "stop() before start()"
        redis = self._probe.counters().since(self._before)
        return Cost(
            redis_commands_per_job=_per_job(redis.commands, jobs),
            redis_script_calls_per_job=_per_job(redis.script_calls, jobs),
            redis_cpu_us_per_job=_per_job(redis.cpu_seconds, jobs, MICROS),
            server_cpu_us_per_job=_per_job(servers, jobs, MICROS),
            worker_cpu_us_per_job=_per_job(workers, jobs, MICROS),
        )
