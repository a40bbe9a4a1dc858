"""`jobq bench`: jobqueue's own benchmark, one measurement or the default suite.

One measurement follows bench/PROTOCOL.md (the contract with the cross-system driver): it
starts `jobq serve` processes on a Redis (an embedded Valkey unless a URL is given), no-op
worker processes, drives a scenario from this process, and reports throughput, latency and
the cost per job in Redis commands and CPU time.

Modules, one concern each: `config` (what to measure), `processes` (children in their own
sessions), `deployment` (Valkey and servers), `stats` and `noop_worker` (the worker program
and what it records), `fleet` (the worker processes seen from here), `producer` (enqueues),
`measure` (percentiles, /proc CPU), `redis_cost` (INFO counters), `scenarios`, `runner`,
`suite`, `machine` (facts and versions) and `report` (table and JSON).
"""
