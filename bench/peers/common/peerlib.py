"""Shared code of the Python peer benchmarks (the contract is bench/PROTOCOL.md).

A peer script imports this module (sys.path insert of this folder), describes itself with a
`Peer` and calls `main(peer)`. The same script re-runs itself with a leading `worker` argument
for each worker process; the job handler calls `JobStats.get().start(payload)` / `.end()`.

Workers report to the parent through an inherited pipe (fd in PEERLIB_STATS_FD), one JSON line
per report: `{"ready": bool, "count", "first", "last", "cpu", "lat": [new samples, ms]}`.
This adds no Redis command, so the driver's commandstats count only the queue's own traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.metadata
import itertools
import json
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
SCENARIOS = ("enqueue_unary", "enqueue_batch", "drain", "end_to_end", "latency_rate", "latency_idle")
IDLE_GAP_S = 0.020  # latency_idle: pause after each completion, per the protocol
SETTLE_S = 0.3  # after every worker said ready: let each reach its blocking read / first poll
STOP_GRACE_S = 5.0  # SIGTERM -> SIGKILL

COST_KEYS = (
    "redis_commands_per_job",
    "redis_script_calls_per_job",
    "redis_cpu_us_per_job",
    "server_cpu_us_per_job",
    "worker_cpu_us_per_job",
)

ENV_FD = "PEERLIB_STATS_FD"
ENV_MODE = "PEERLIB_STATS_MODE"  # "interval" (report every 50 ms) or "immediate" (report per job)
ENV_LAT = "PEERLIB_RECORD_LATENCY"


def log(msg: str) -> None:
    print(f"[peer {os.getpid()}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- arguments / output


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="peer benchmark (bench/PROTOCOL.md)")
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--in-flight", type=int, default=64)
    p.add_argument("--payload-bytes", type=int, default=100)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=300.0, help="give up (error) after this many seconds")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments {unknown}")
    return args


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "in_flight": args.in_flight,
        "payload_bytes": args.payload_bytes,
        "rate": args.rate,
        "duration": args.duration,
    }


def emit(obj: dict[str, Any]) -> None:
    """The one JSON line on stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def versions(*dists: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            out[d] = "not installed"
    out["python"] = platform.python_version()
    return out


class Payloads:
    """`{"t": <now>, "pad": "xx.."}` whose compact JSON is about P bytes (t's digits vary by 1-2)."""

    def __init__(self, size: int) -> None:
        base = len(json.dumps({"t": time.time(), "pad": ""}, separators=(",", ":")))
        self.pad = "x" * max(0, size - base)

    def make(self) -> dict[str, Any]:
        return {"t": time.time(), "pad": self.pad}


def summarize_ms(samples: Sequence[float]) -> dict[str, float] | None:
    if not samples:
        return None
    if len(samples) == 1:  # quantiles() needs two points
        return dict.fromkeys(("p50", "p90", "p99", "max"), round(samples[0], 3))
    q = statistics.quantiles(samples, n=100, method="inclusive")
    points = {"p50": q[49], "p90": q[89], "p99": q[98], "max": max(samples)}
    return {k: round(v, 3) for k, v in points.items()}


# --------------------------------------------------------------------------- worker side


class JobStats:
    """Per-worker-process job counter, first start / last end (wall clock) and latency samples."""

    _instance: JobStats | None = None

    def __init__(self) -> None:
        fd = os.environ.get(ENV_FD)
        self.fd = int(fd) if fd else None
        self.immediate = os.environ.get(ENV_MODE) == "immediate"
        self.record_latency = os.environ.get(ENV_LAT) == "1"
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.lat: collections.deque[float] = collections.deque()  # thread-safe append/popleft
        self._sent = -1
        self._wlock = threading.Lock()
        if self.fd is not None and not self.immediate:
            threading.Thread(target=self._reporter, name="jobstats", daemon=True).start()

    @classmethod
    def get(cls) -> JobStats:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def start(self, payload: dict[str, Any]) -> None:
        now = time.time()
        if self.first is None:
            self.first = now
        if self.record_latency:
            self.lat.append((now - float(payload["t"])) * 1000.0)

    def end(self) -> None:
        self.last = time.time()
        self.count += 1
        if self.immediate:
            self.report()

    def ready(self) -> None:
        self.report(ready=True)

    def report(self, ready: bool = False) -> None:
        if self.fd is None:
            return
        with self._wlock:
            lat = [round(self.lat.popleft(), 4) for _ in range(len(self.lat))]
            self._sent = self.count
            msg: dict[str, Any] = {"ready": ready, "count": self.count, "first": self.first}
            msg |= {"last": self.last, "cpu": time.process_time(), "lat": lat}
            data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
            while data:
                data = data[os.write(self.fd, data) :]

    def _reporter(self) -> None:
        while True:
            time.sleep(0.05)
            if self.count != self._sent:
                self.report()


# --------------------------------------------------------------------------- parent side


@dataclass
class _WorkerState:
    proc: subprocess.Popen[bytes]
    fd: int
    buf: bytes = b""
    ready: bool = False
    eof: bool = False
    count: int = 0
    first: float | None = None
    last: float | None = None
    cpu_ready: float | None = None
    cpu: float | None = None
    lat: list[float] = field(default_factory=list)


class WorkerPool:
    """W worker processes, each in its own session/process group, and a thread reading their reports."""

    def __init__(self, argv: list[str], count: int, immediate: bool = False, latency: bool = False) -> None:
        self.argv = argv
        self.n = count
        self.env = dict(os.environ)
        self.env[ENV_MODE] = "immediate" if immediate else "interval"
        self.env[ENV_LAT] = "1" if latency else "0"
        self.workers: list[_WorkerState] = []
        self.cond = threading.Condition()
        self.sel = selectors.DefaultSelector()
        self.started_at = 0.0
        self._reader: threading.Thread | None = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.time()
        for i in range(self.n):
            r, w = os.pipe()
            env = dict(self.env, **{ENV_FD: str(w)})
            try:
                proc = subprocess.Popen(
                    [*self.argv, "--worker-index", str(i)],
                    env=env,
                    pass_fds=(w,),
                    stdin=subprocess.DEVNULL,
                    stdout=sys.stderr,  # banners must not reach our one-line stdout
                    start_new_session=True,  # own process group: stop() signals the group by its id
                )
            finally:
                os.close(w)
            self.workers.append(_WorkerState(proc, r))
            self.sel.register(r, selectors.EVENT_READ, self.workers[-1])
        self._reader = threading.Thread(target=self._read_loop, name="pool-reader", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        while True:
            with self.cond:
                if all(w.eof for w in self.workers):
                    self.cond.notify_all()
                    return
            for key, _ in self.sel.select(timeout=0.5):
                w: _WorkerState = key.data
                try:
                    chunk = os.read(w.fd, 65536)
                except OSError:
                    chunk = b""
                with self.cond:
                    if not chunk:
                        w.eof = True
                        self.sel.unregister(w.fd)
                    else:
                        w.buf += chunk
                        *lines, w.buf = w.buf.split(b"\n")
                        for line in lines:
                            self._apply(w, json.loads(line))
                    self.cond.notify_all()

    @staticmethod
    def _apply(w: _WorkerState, msg: dict[str, Any]) -> None:
        if msg["ready"]:
            w.ready = True
            w.cpu_ready = msg["cpu"]
        w.count, w.first, w.last, w.cpu = msg["count"], msg["first"], msg["last"], msg["cpu"]
        w.lat.extend(msg["lat"])

    def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                dead = [w.proc.pid for w in self.workers if w.eof]
                if dead:
                    raise RuntimeError(f"worker(s) {dead} exited while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out waiting for {what} (count={self.count})")
                self.cond.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._wait(lambda: all(w.ready for w in self.workers), timeout, "workers ready")
        time.sleep(SETTLE_S)

    def wait_count(self, n: int, timeout: float) -> None:
        self._wait(lambda: self.count >= n, timeout, f"{n} jobs completed")

    @property
    def count(self) -> int:
        return sum(w.count for w in self.workers)

    def first(self) -> float:
        return min(w.first for w in self.workers if w.first is not None)

    def last(self) -> float:
        return max(w.last for w in self.workers if w.last is not None)

    def latencies(self) -> list[float]:
        return [x for w in self.workers for x in w.lat]

    def cpu_seconds(self) -> float:
        """Worker CPU (all threads) from each one's ready report to its last report."""
        return sum((w.cpu or 0.0) - (w.cpu_ready or 0.0) for w in self.workers)

    def stop(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"worker {w.proc.pid} ignored SIGTERM, killing its group")
            # SIGKILL the group even after a clean exit: it also ends anything the worker started.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.proc.pid, signal.SIGKILL)
            w.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        for w in self.workers:
            with contextlib.suppress(OSError):
                os.close(w.fd)
        self.workers = []


# --------------------------------------------------------------------------- producer loops


class SyncProducer:
    """Interface of a blocking producer; `enqueue_one` must be thread-safe (unary runs F threads)."""

    def warmup(self) -> None:
        """Connect before the clock starts (no job is enqueued)."""

    def enqueue_one(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def enqueue_many(self, payloads: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class AsyncProducer:
    """Interface of an asyncio producer; unary runs F coroutines."""

    async def warmup(self) -> None:
        """Connect before the clock starts (no job is enqueued)."""

    async def enqueue_one(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    async def enqueue_many(self, payloads: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass


def unary_sync(prod: SyncProducer, pl: Payloads, n: int, f: int) -> list[float]:
    ctr = itertools.count()  # next() on itertools.count is atomic under the GIL
    lats: list[float] = []  # list.append is atomic too

    def loop() -> None:
        while next(ctr) < n:
            p = pl.make()
            t0 = time.perf_counter()
            prod.enqueue_one(p)
            lats.append((time.perf_counter() - t0) * 1000.0)

    if f <= 1:
        loop()
    else:
        threads = [threading.Thread(target=loop) for _ in range(f)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return lats


def batch_sync(prod: SyncProducer, pl: Payloads, n: int, b: int) -> list[float]:
    lats: list[float] = []
    for i in range(0, n, b):
        chunk = [pl.make() for _ in range(min(b, n - i))]
        t0 = time.perf_counter()
        prod.enqueue_many(chunk)
        lats.append((time.perf_counter() - t0) * 1000.0)
    return lats


async def unary_async(prod: AsyncProducer, pl: Payloads, n: int, f: int) -> list[float]:
    ctr = itertools.count()
    lats: list[float] = []

    async def loop() -> None:
        while next(ctr) < n:
            p = pl.make()
            t0 = time.perf_counter()
            await prod.enqueue_one(p)
            lats.append((time.perf_counter() - t0) * 1000.0)

    await asyncio.gather(*(loop() for _ in range(max(1, f))))
    return lats


async def batch_async(prod: AsyncProducer, pl: Payloads, n: int, b: int) -> list[float]:
    lats: list[float] = []
    for i in range(0, n, b):
        chunk = [pl.make() for _ in range(min(b, n - i))]
        t0 = time.perf_counter()
        await prod.enqueue_many(chunk)
        lats.append((time.perf_counter() - t0) * 1000.0)
    return lats


# --------------------------------------------------------------------------- scenario runner


@dataclass
class Peer:
    system: str
    dists: tuple[str, ...]
    make_producer: Callable[[argparse.Namespace], SyncProducer | AsyncProducer]
    run_worker: Callable[[argparse.Namespace, int], None]  # (args, worker index); must call JobStats.ready()
    notes: Callable[[argparse.Namespace], str]
    batch: bool = True
    batch_skip: str = ""


class _Calls:
    """Turns a sync or async producer into blocking calls for the scenario code."""

    def __init__(self, prod: SyncProducer | AsyncProducer) -> None:
        self.prod = prod
        self.loop = asyncio.new_event_loop() if isinstance(prod, AsyncProducer) else None

    def run(self, aw: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return self.loop.run_until_complete(aw)

    def warmup(self) -> None:
        if isinstance(self.prod, AsyncProducer):
            self.run(self.prod.warmup())
        else:
            self.prod.warmup()

    def one(self, payload: dict[str, Any]) -> None:
        if isinstance(self.prod, AsyncProducer):
            self.run(self.prod.enqueue_one(payload))
        else:
            self.prod.enqueue_one(payload)

    def unary(self, pl: Payloads, n: int, f: int) -> list[float]:
        if isinstance(self.prod, AsyncProducer):
            return self.run(unary_async(self.prod, pl, n, f))
        return unary_sync(self.prod, pl, n, f)

    def batch(self, pl: Payloads, n: int, b: int) -> list[float]:
        if isinstance(self.prod, AsyncProducer):
            return self.run(batch_async(self.prod, pl, n, b))
        return batch_sync(self.prod, pl, n, b)

    def paced(self, pl: Payloads, rate: float, duration: float) -> int:
        """Single enqueues at `rate`/s for `duration` s, on a fixed schedule (catches up if late)."""
        n = max(1, int(rate * duration))

        async def go_async(prod: AsyncProducer) -> None:
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await prod.enqueue_one(pl.make())

        if isinstance(self.prod, AsyncProducer):
            self.run(go_async(self.prod))
        else:
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.prod.enqueue_one(pl.make())
        return n

    def close(self) -> None:
        if isinstance(self.prod, AsyncProducer):
            self.run(self.prod.close())
            assert self.loop is not None
            self.loop.close()
        else:
            self.prod.close()


@dataclass
class _Result:
    jobs: int
    seconds: float
    latency: dict[str, float] | None = None
    worker_cpu: float | None = None  # seconds, all worker processes
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Ctx:
    peer: Peer
    args: argparse.Namespace
    calls: _Calls
    pl: Payloads
    worker_argv: list[str]

    def pool(self, immediate: bool = False, latency: bool = False) -> WorkerPool:
        return WorkerPool(self.worker_argv, max(1, self.args.workers), immediate=immediate, latency=latency)

    def fill(self, n: int) -> None:
        """Enqueue n jobs the fastest way the system offers: batches if it has them, else F in flight."""
        if self.peer.batch:
            self.calls.batch(self.pl, n, self.args.batch)
        else:
            self.calls.unary(self.pl, n, self.args.in_flight)


def _enqueue(c: _Ctx) -> _Result:
    a = c.args
    t0 = time.perf_counter()
    if a.scenario == "enqueue_unary":
        samples, what = c.calls.unary(c.pl, a.jobs, a.in_flight), "per enqueue call"
    else:
        samples, what = c.calls.batch(c.pl, a.jobs, a.batch), f"per enqueue call of {a.batch} jobs"
    seconds = time.perf_counter() - t0
    return _Result(a.jobs, seconds, summarize_ms(samples), extra={"latency_is": what})


def _drain(c: _Ctx) -> _Result:
    n = c.args.jobs
    t0 = time.perf_counter()
    c.fill(n)
    extra: dict[str, Any] = {"fill_seconds": round(time.perf_counter() - t0, 4)}
    with c.pool() as pool:
        pool.start()
        pool.wait_count(n, c.args.timeout)
        extra |= {"seconds_incl_startup": round(pool.last() - pool.started_at, 4), "completed": pool.count}
        return _Result(n, pool.last() - pool.first(), None, pool.cpu_seconds(), extra)


def _end_to_end(c: _Ctx) -> _Result:
    n = c.args.jobs
    with c.pool() as pool:
        pool.start()
        pool.wait_ready()
        t_first = time.time()
        c.fill(n)
        extra: dict[str, Any] = {"enqueue_seconds": round(time.time() - t_first, 4)}
        pool.wait_count(n, c.args.timeout)
        extra["completed"] = pool.count
        return _Result(n, pool.last() - t_first, None, pool.cpu_seconds(), extra)


def _latency_rate(c: _Ctx) -> _Result:
    with c.pool(latency=True) as pool:
        pool.start()
        pool.wait_ready()
        t_first = time.time()
        n = c.calls.paced(c.pl, c.args.rate, c.args.duration)
        send_s = time.time() - t_first
        pool.wait_count(n, c.args.timeout)
        samples = pool.latencies()
        extra = {"achieved_rate": round(n / send_s, 1), "samples": len(samples), "completed": pool.count}
        return _Result(n, pool.last() - t_first, summarize_ms(samples), pool.cpu_seconds(), extra)


def _latency_idle(c: _Ctx) -> _Result:
    n = c.args.jobs
    with c.pool(immediate=True, latency=True) as pool:
        pool.start()
        pool.wait_ready()
        t_first = time.time()
        for i in range(n):
            c.calls.one(c.pl.make())
            pool.wait_count(i + 1, min(c.args.timeout, 30.0))
            time.sleep(IDLE_GAP_S)
        samples = pool.latencies()
        return _Result(n, time.time() - t_first, summarize_ms(samples), extra={"samples": len(samples)})


_SCENARIO_FNS: dict[str, Callable[[_Ctx], _Result]] = {
    "enqueue_unary": _enqueue,
    "enqueue_batch": _enqueue,
    "drain": _drain,
    "end_to_end": _end_to_end,
    "latency_rate": _latency_rate,
    "latency_idle": _latency_idle,
}


def _run_scenario(peer: Peer, args: argparse.Namespace, worker_argv: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"system": peer.system, "scenario": args.scenario, "config": config_of(args)}
    if args.scenario == "enqueue_batch" and not peer.batch:
        return out | {"skipped": peer.batch_skip}
    calls = _Calls(peer.make_producer(args))
    try:
        calls.warmup()
        r = _SCENARIO_FNS[args.scenario](_Ctx(peer, args, calls, Payloads(args.payload_bytes), worker_argv))
    finally:
        calls.close()
    cost = None
    if r.worker_cpu is not None:  # the Redis/server parts are the driver's to fill
        cost = dict.fromkeys(COST_KEYS)
        cost["worker_cpu_us_per_job"] = round(r.worker_cpu / r.jobs * 1e6, 2)
    return out | {
        "jobs": r.jobs,
        "seconds": round(r.seconds, 6),
        "jobs_per_second": round(r.jobs / r.seconds, 1) if r.seconds > 0 else None,
        "latency_ms": r.latency,
        "cost": cost,
        "versions": versions(*peer.dists),
        "notes": peer.notes(args),
        "extra": r.extra,
    }


class Terminated(Exception):
    """SIGTERM received (the driver's timeout)."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
    raise Terminated("SIGTERM")


def main(peer: Peer, script: str) -> None:
    """Entry point of a peer script: `script [worker] --scenario ... --redis-url ...`."""
    argv = sys.argv[1:]
    if argv and argv[0] == "worker":
        wp = argparse.ArgumentParser(add_help=False)
        wp.add_argument("--worker-index", type=int, default=0)
        wargs, rest = wp.parse_known_args(argv[1:])
        peer.run_worker(parse_args(rest), wargs.worker_index)
        return
    args = parse_args(argv)
    # The driver's timeout may SIGTERM us: raise so that `finally` blocks stop the workers.
    signal.signal(signal.SIGTERM, _on_sigterm)
    worker_argv = [sys.executable, os.path.abspath(script), "worker", *argv]
    try:
        result = _run_scenario(peer, args, worker_argv)
    except Exception as e:  # one JSON line even on failure, then a non-zero exit
        if not isinstance(e, Terminated):
            traceback.print_exc(file=sys.stderr)
        emit({"system": peer.system, "scenario": args.scenario, "error": f"{type(e).__name__}: {e}"})
        sys.exit(143 if isinstance(e, Terminated) else 1)
    emit(result)
