"""Profiles: how much load, which faults, how many of each.

`ci` runs in the test suite (tests/fault/test_crash_chaos.py) on a 2-core machine in a few
minutes; `gate` is the release run, documented in docs/reliability.md. The issue fixes the
headline counts (jobs, worker kills, server kills, Valkey restarts); pauses, cuts and stalls
are added on top so every fault kind of the plan is exercised in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fault.cluster import ClusterConfig
from tests.fault.faults import Fault


@dataclass(frozen=True)
class Profile:
    name: str
    jobs: int
    #: The producer spreads the jobs over this many seconds; faults fall inside it.
    duration_s: float
    faults: dict[Fault, int]
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    #: No fault in the first seconds: the cluster is warm before the first one.
    warmup_s: float = 3.0
    #: Drain bound after the last fault healed: lease + 3 sweeps + this, for processes that
    #: restart and workers reconnecting with backoff.
    drain_slack_s: float = 10.0

    @property
    def drain_bound_s(self) -> float:
        return self.cluster.lease_s + 3 * self.cluster.sweep_s + self.drain_slack_s

    @property
    def fault_window(self) -> tuple[float, float]:
        return (self.warmup_s, self.duration_s)


CI = Profile(
    name="ci",
    jobs=20_000,
    duration_s=120.0,
    faults={
        Fault.WORKER_KILL: 15,
        Fault.SERVER_KILL: 2,
        Fault.VALKEY_KILL: 1,
        Fault.WORKER_PAUSE: 2,
        Fault.VALKEY_PAUSE: 1,
        Fault.WORKER_CUT: 2,
        Fault.WORKER_STALL: 1,
        Fault.REDIS_CUT: 1,
        Fault.REDIS_STALL: 1,
    },
    cluster=ClusterConfig(servers=2, workers=4, concurrency=8),
)

GATE = Profile(
    name="gate",
    jobs=100_000,
    duration_s=600.0,
    faults={
        Fault.WORKER_KILL: 50,
        Fault.SERVER_KILL: 5,
        Fault.VALKEY_KILL: 3,
        Fault.WORKER_PAUSE: 8,
        Fault.VALKEY_PAUSE: 4,
        Fault.WORKER_CUT: 8,
        Fault.WORKER_STALL: 6,
        Fault.REDIS_CUT: 4,
        Fault.REDIS_STALL: 4,
    },
    cluster=ClusterConfig(servers=3, workers=6, concurrency=8),
)

# A few seconds of everything, for trying the harness itself.
SMOKE = Profile(
    name="smoke",
    jobs=2_000,
    duration_s=12.0,
    faults={Fault.WORKER_KILL: 2, Fault.SERVER_KILL: 1, Fault.VALKEY_KILL: 1, Fault.WORKER_PAUSE: 1},
    cluster=ClusterConfig(servers=2, workers=3, concurrency=8),
    warmup_s=2.0,
)

# On a local Valkey Cluster: the primary of the fault queue killed twice under load (its replica
# takes over, then the node rejoins as a replica), with worker and server kills around it. Every
# write is acknowledged at DURABILITY_REPLICATED (the servers' default), so a failover may lose
# nothing acknowledged (tests/fault/test_failover.py).
CLUSTER_FAILOVER = Profile(
    name="cluster-failover",
    jobs=6_000,
    duration_s=40.0,
    faults={Fault.PRIMARY_KILL: 2, Fault.WORKER_KILL: 3, Fault.SERVER_KILL: 1},
    cluster=ClusterConfig(
        servers=2,
        workers=3,
        concurrency=8,
        redis_cluster=True,
        server_env={"JOBQ_DEFAULT_DURABILITY": "replicated"},
    ),
    warmup_s=4.0,
)

# The same through Sentinel: a primary, a replica and three sentinels.
SENTINEL_FAILOVER = Profile(
    name="sentinel-failover",
    jobs=6_000,
    duration_s=40.0,
    faults={Fault.PRIMARY_KILL: 2, Fault.WORKER_KILL: 3, Fault.SERVER_KILL: 1},
    cluster=ClusterConfig(
        servers=2,
        workers=3,
        concurrency=8,
        redis_sentinel=True,
        server_env={"JOBQ_DEFAULT_DURABILITY": "replicated"},
    ),
    warmup_s=4.0,
)

PROFILES = {profile.name: profile for profile in (CI, GATE, SMOKE, CLUSTER_FAILOVER, SENTINEL_FAILOVER)}
