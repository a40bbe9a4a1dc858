"""The cost of a measurement per job: Redis commands and CPU, the CPU of servers, workers and producer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from jobqueue_bench.measure import CpuMeter, own_cpu_seconds
from jobqueue_bench.redis_cost import RedisCounters, RedisProbe, RedisUsage

MICROS = 1_000_000


@dataclass(frozen=True)
class Cost:
    """bench/PROTOCOL.md's cost object; None where it was not measured."""

    redis_commands_per_job: float | None = None
    redis_script_calls_per_job: float | None = None
    redis_cpu_us_per_job: float | None = None
    server_cpu_us_per_job: float | None = None
    worker_cpu_us_per_job: float | None = None
    producer_cpu_us_per_job: float | None = None

    def document(self) -> dict[str, Any]:
        return {name: None if value is None else round(value, 2) for name, value in asdict(self).items()}


def per_job(value: float | None, jobs: int, scale: float = 1.0) -> float | None:
    return None if value is None or jobs <= 0 else value * scale / jobs


class CostMeter:
    """Readings of Redis and of our servers' and workers' CPU at `start` and `stop`.

    With `producer_is_self`, this process is the producer and its own CPU is read too (a fair
    stand-in when it does little else: the enqueue scenarios). An outside producer reports its
    own CPU to `stop` instead.
    """

    def __init__(
        self,
        probe: RedisProbe,
        server_pids: Sequence[int],
        worker_pids: Sequence[int],
        *,
        producer_is_self: bool = False,
    ) -> None:
        self._probe = probe
        self._servers = CpuMeter(server_pids)
        self._workers = CpuMeter(worker_pids)
        self._producer_is_self = producer_is_self
        self._before: RedisCounters | None = None
        self._own_before = 0.0

    @property
    def server_processes(self) -> int:
        return len(self._servers.pids)

    def start(self) -> None:
        self._before = self._probe.counters()
        self._servers.start()
        self._workers.start()
        self._own_before = own_cpu_seconds()

    def stop(
        self, jobs: int, *, producer_cpu_s: float | None = None, producer_jobs: int | None = None
    ) -> Cost:
        """`take()`, then per job (see `Readings.per_job`)."""
        return self.take().per_job(jobs, producer_cpu_s=producer_cpu_s, producer_jobs=producer_jobs)

    def take(self) -> Readings:
        """What was spent since `start`, for a job count known only afterwards."""
        own = own_cpu_seconds() - self._own_before
        servers, workers = self._servers.stop(), self._workers.stop()
        assert self._before is not None, "take() before start()"
        redis = self._probe.counters().since(self._before)
        return Readings(redis, servers, workers, own if self._producer_is_self else None)


@dataclass(frozen=True)
class Readings:
    """CPU seconds (None: not read) and Redis usage over a measurement."""

    redis: RedisUsage
    server_cpu_s: float | None
    worker_cpu_s: float | None
    own_cpu_s: float | None

    def per_job(
        self, jobs: int, *, producer_cpu_s: float | None = None, producer_jobs: int | None = None
    ) -> Cost:
        """Costs over `jobs`; the producer's CPU (`producer_cpu_s` when given, else this
        process's own) over `producer_jobs` (default `jobs`): an outside producer reports the
        CPU of its measured jobs only, not of its warm-up."""
        producer = self.own_cpu_s if producer_cpu_s is None else producer_cpu_s
        return Cost(
            redis_commands_per_job=per_job(self.redis.commands, jobs),
            redis_script_calls_per_job=per_job(self.redis.script_calls, jobs),
            redis_cpu_us_per_job=per_job(self.redis.cpu_seconds, jobs, MICROS),
            server_cpu_us_per_job=per_job(self.server_cpu_s, jobs, MICROS),
            worker_cpu_us_per_job=per_job(self.worker_cpu_s, jobs, MICROS),
            producer_cpu_us_per_job=per_job(producer, producer_jobs or jobs, MICROS),
        )
