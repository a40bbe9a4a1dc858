"""The gRPC ceiling: a bare grpc.aio echo server and client, with no Redis behind them.

Speaks bench/PROTOCOL.md (system "grpc-echo"). Four scenarios:

- `enqueue_unary`: N unary echo calls of a P-byte message, F in flight on one channel: the
  most our unary Enqueue can do in Python. With `--client stub --processes N`: `serve
  --processes N` (below) driven by bench/loadgen (`--kind echo`, F calls in flight over
  `--connections` connections, 4 per process by default), the ceiling of jobqueue's
  `--client stub` cells: the same load generator, concurrency and connections. The server's
  CPU covers all its processes; the load generator reports its own.
- `drain`: the bidi-stream ceiling of a batched lease/ack loop. The server sends messages of up
  to C items (8-byte id + P bytes each: the window); the worker answers each with one message
  carrying the C ids as acks; N items in all, split over W worker processes.
- `latency_idle` and `latency_rate`: the floor of enqueue -> handler start. The producer sends
  each item (id, time sent, P bytes) on a bidi stream to the server, which relays it to a worker
  process on that worker's stream; the worker records its arrival minus the time sent (its
  "handler start"), acks it, and the server answers the producer with the id once the ack is in.
  The two gRPC hops of a job, with no Redis between them. latency_idle: one item at a time, the
  next 20 ms after the last was acked; latency_rate: R items a second for S seconds, open loop.

No protos are generated: the methods are generic handlers on raw bytes (no (de)serializer), so
the figures are grpc.aio's own cost. The server and each worker are separate processes in the
process group of this program, which stops them on the way out.

`echo.py serve --port P --processes N` only serves: N server processes on one port
(SO_REUSEPORT spreads connections over them), the port printed on stdout, until SIGTERM or
SIGINT stops them all; for measuring the ceiling with bench/loadgen.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc

SYSTEM = "grpc-echo"
SERVICE = "bench.Echo"
UNARY = f"/{SERVICE}/Unary"
DRAIN = f"/{SERVICE}/Drain"
PUSH = f"/{SERVICE}/Push"
RELAY = f"/{SERVICE}/Relay"
ITEM = struct.Struct("<Qd")  # a relayed item's id and the time it was sent, before its payload
IDLE_GAP_S = 0.020  # as jobqueue's latency_idle
RELAY_WARMUP = 20
ID = struct.Struct("<Q")
HELLO = struct.Struct("<I")  # the worker's first message: its window C
# A window of 256 items of 512 KiB is past gRPC's 4 MiB default.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
START_TIMEOUT_S = 15.0
MAX_PROCESSES = 64
# Each server process binds the same port; the kernel spreads connections over them.
REUSEPORT = [("grpc.so_reuseport", 1)]
T = TypeVar("T")
SCENARIOS = ("enqueue_unary", "enqueue_batch", "drain", "end_to_end", "latency_rate", "latency_idle")
CONNECTIONS_PER_PROCESS = 4
SMALL_RUN = 1000  # below this many calls (a smoke run), a short warm-up
# bench/run builds the load generator there (or says where with JOBQ_BENCH_BIN).
CHECKOUT = Path(__file__).resolve().parents[3]


def log(message: str) -> None:
    print(f"grpc-echo: {message}", file=sys.stderr, flush=True)


def event_loop() -> str:
    """The loop jobq's own processes use (jobqueue.eventloop): uvloop unless missing or
    JOBQ_EVENT_LOOP=asyncio, so the ceiling is measured on the same footing."""
    if os.environ.get("JOBQ_EVENT_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    if event_loop() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a process's CPU time leaves out its children's)."""
    tree = [pid]
    for parent in tree:  # grows while it is walked
        for path in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                tree += [int(word) for word in path.read_text().split()]
            except OSError:
                continue
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError as error:  # a server process died mid-run: the figure would be wrong
            raise RuntimeError(f"server process {pid} is gone") from error
    return total


# --- server ---------------------------------------------------------------------------------


class EchoService:
    def __init__(self, jobs: int, payload_bytes: int) -> None:
        self.remaining = jobs  # one event loop: no lock needed
        self.payload = b"x" * payload_bytes
        self.next_id = 0

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    def _window(self, size: int) -> bytes:
        count = min(size, self.remaining)
        self.remaining -= count
        first, self.next_id = self.next_id, self.next_id + count
        return b"".join(ID.pack(i) + self.payload for i in range(first, first + count))

    async def drain(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, bytes]) -> None:
        hello = await context.read()
        if hello is grpc.aio.EOF:
            return
        (window,) = HELLO.unpack(hello)
        while self.remaining > 0:
            await context.write(self._window(window))
            acks = await context.read()
            if acks is grpc.aio.EOF:
                return


class RelayService:
    """Items from producers' Push streams to the worker's Relay stream, and its acks back."""

    def __init__(self) -> None:
        self.worker: asyncio.Queue[bytes] = asyncio.Queue()  # items for the worker
        self.waiting: dict[int, asyncio.Queue[bytes | None]] = {}  # id -> its producer's answers
        self.worker_ready = asyncio.Event()

    async def push(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, bytes]) -> None:
        answers: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def forward() -> None:
            await self.worker_ready.wait()
            async for item in request_iterator:
                (item_id, _) = ITEM.unpack_from(item)
                self.waiting[item_id] = answers
                self.worker.put_nowait(item)
            answers.put_nowait(None)

        reader = asyncio.ensure_future(forward())
        try:
            while (answer := await answers.get()) is not None:
                await context.write(answer)
        finally:
            reader.cancel()

    async def relay(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, bytes]) -> None:
        async def acks() -> None:
            async for ack in request_iterator:
                (item_id,) = ID.unpack(ack)
                answers = self.waiting.pop(item_id, None)
                if answers is not None:
                    answers.put_nowait(ack)

        reader = asyncio.ensure_future(acks())
        self.worker_ready.set()
        try:
            while True:
                await context.write(await self.worker.get())
        finally:
            reader.cancel()


async def serve(jobs: int, payload_bytes: int, host: str = "127.0.0.1", port: int = 0) -> None:
    service = EchoService(jobs, payload_bytes)
    relay = RelayService()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            # No (de)serializer: grpc hands the handlers the raw bytes.
            "Unary": grpc.unary_unary_rpc_method_handler(service.unary),
            "Drain": grpc.stream_stream_rpc_method_handler(service.drain),
            "Push": grpc.stream_stream_rpc_method_handler(relay.push),
            "Relay": grpc.stream_stream_rpc_method_handler(relay.relay),
        },
    )
    server = grpc.aio.server(options=CHANNEL_OPTIONS + REUSEPORT)
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind {host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(bound, flush=True)  # the parent reads the port from our first line
    await stop.wait()
    await server.stop(0.5)


# --- worker (the drain client) --------------------------------------------------------------


async def work(port: int, window: int, payload_bytes: int) -> dict[str, Any]:
    """One bidi stream: take windows, ack every id of each; returns counts and timestamps."""
    cpu0 = own_cpu_seconds()
    step = ID.size + payload_bytes  # every item has the same size
    count, first, last = 0, 0.0, 0.0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        call: grpc.aio.StreamStreamCall[bytes, bytes] = channel.stream_stream(DRAIN)()
        await call.write(HELLO.pack(window))
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                break
            if not first:
                first = time.time()
            # The "handler": take each item's id (no-op body), then ack them all in one message.
            assert isinstance(message, bytes)
            view = memoryview(message)
            acks = b"".join(bytes(view[i : i + ID.size]) for i in range(0, len(message), step))
            count += len(acks) // ID.size
            await call.write(acks)
            last = time.time()
        await call.done_writing()
    return {"count": count, "first": first, "last": last, "cpu_s": own_cpu_seconds() - cpu0}


async def relay_work(port: int, items: int) -> dict[str, Any]:
    """The relay's worker: `items` items (after the warm-up), each acked; their latencies."""
    latencies: list[float] = []
    seen = 0
    cpu0 = own_cpu_seconds()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        call: grpc.aio.StreamStreamCall[bytes, bytes] = channel.stream_stream(RELAY)()
        while seen < items + RELAY_WARMUP:
            item = await call.read()
            if item is grpc.aio.EOF:
                break
            assert isinstance(item, bytes)
            item_id, sent = ITEM.unpack_from(item)
            arrived = time.time()  # the "handler start"
            if seen >= RELAY_WARMUP:
                latencies.append(arrived - sent)
            seen += 1
            await call.write(ID.pack(item_id))
        call.cancel()
    return {"latencies_s": latencies, "cpu_s": own_cpu_seconds() - cpu0}


# --- client side of the measurement ---------------------------------------------------------


async def run_relay(port: int, scenario: str, items: int, rate: float, payload_bytes: int) -> float:
    """Sends the items as the scenario paces them (after a warm-up); returns the seconds taken."""
    body = b"x" * payload_bytes
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), START_TIMEOUT_S)
        call: grpc.aio.StreamStreamCall[bytes, bytes] = channel.stream_stream(PUSH)()
        for item_id in range(RELAY_WARMUP):
            await call.write(ITEM.pack(item_id, time.time()) + body)
            await call.read()
        started = time.perf_counter()
        if scenario == "latency_idle":
            for item_id in range(RELAY_WARMUP, RELAY_WARMUP + items):
                await call.write(ITEM.pack(item_id, time.time()) + body)
                await call.read()
                await asyncio.sleep(IDLE_GAP_S)
        else:

            async def answers() -> None:
                for _ in range(items):
                    await call.read()

            reading = asyncio.ensure_future(answers())
            loop = asyncio.get_running_loop()
            start = loop.time()
            for index in range(items):
                delay = start + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await call.write(ITEM.pack(RELAY_WARMUP + index, time.time()) + body)
            await reading
        seconds = time.perf_counter() - started
        await call.done_writing()
    return seconds


def measure_relay(args: argparse.Namespace) -> dict[str, Any]:
    items = args.jobs if args.scenario == "latency_idle" else max(1, round(args.rate * args.duration))
    server = Server(0, args.payload_bytes)
    try:
        argv = [sys.executable, __file__, "_relay_worker", "--port", str(server.port), "--jobs", str(items)]
        worker = subprocess.Popen(argv, stdout=subprocess.PIPE)
        cpu0 = server.cpu_seconds()
        seconds = run_loop(run_relay(server.port, args.scenario, items, args.rate, args.payload_bytes))
        out, _ = worker.communicate(timeout=60)
        server_cpu = server.cpu_seconds() - cpu0
    finally:
        server.stop()
    if worker.returncode != 0:
        raise RuntimeError(f"the relay worker exited with {worker.returncode}")
    report = json.loads(out)
    if len(report["latencies_s"]) != items:
        raise RuntimeError(f"the worker saw {len(report['latencies_s'])} items, not {items}")
    pacing = (
        f"one at a time, the next {IDLE_GAP_S * 1000:.0f} ms after the last was acked"
        if args.scenario == "latency_idle"
        else f"{args.rate:g}/s for {args.duration:g} s, open loop"
    )
    notes = (
        f"relay: producer stream -> server -> worker process's stream and its ack back, {pacing}; "
        f"latency = arrival at the worker - time sent ({args.payload_bytes} B items)"
    )
    return {
        "jobs": items,
        "seconds": seconds,
        "latency_ms": {k: round(v, 3) for k, v in quantiles_ms(report["latencies_s"]).items()},
        "server_cpu_us_per_job": server_cpu * 1e6 / items,
        "worker_cpu_us_per_job": report["cpu_s"] * 1e6 / items,
        "notes": notes,
    }


def quantiles_ms(samples_s: list[float]) -> dict[str, float]:
    if len(samples_s) < 2:
        value = samples_s[0] * 1000 if samples_s else 0.0
        return {"p50": value, "p90": value, "p99": value, "max": value}
    cuts = statistics.quantiles(samples_s, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p90": cuts[89] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(samples_s) * 1000,
    }


async def run_unary(port: int, jobs: int, in_flight: int, payload_bytes: int) -> dict[str, Any]:
    body = b"x" * payload_bytes
    latencies: list[float] = []
    remaining = jobs
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), START_TIMEOUT_S)
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UNARY)

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                reply = await call(body)
                latencies.append(time.perf_counter() - start)
                assert len(reply) == payload_bytes

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(max(1, in_flight))))
        seconds = time.perf_counter() - started
    return {"jobs": len(latencies), "seconds": seconds, "latency_ms": quantiles_ms(latencies)}


def run_drain(port: int, jobs: int, workers: int, window: int, payload_bytes: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "_worker", "--port", str(port)]
    argv += ["--concurrency", str(max(1, window)), "--payload-bytes", str(payload_bytes)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(max(1, workers))]
    reports = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"a worker exited with {proc.returncode}")
        reports.append(json.loads(out))
    done = [r for r in reports if r["count"]]
    count = sum(r["count"] for r in reports)
    if count != jobs:
        raise RuntimeError(f"the workers acked {count} items, not {jobs}")
    seconds = max(r["last"] for r in done) - min(r["first"] for r in done)
    return {"jobs": count, "seconds": seconds, "worker_cpu_s": sum(r["cpu_s"] for r in reports)}


class Server:
    """The echo server as a child process (same process group: stopped by us, also on failure)."""

    def __init__(self, jobs: int, payload_bytes: int, host: str = "127.0.0.1", port: int = 0) -> None:
        argv = [sys.executable, __file__, "_serve", "--host", host, "--port", str(port)]
        argv += ["--jobs", str(jobs), "--payload-bytes", str(payload_bytes)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the echo server exited at start")
        self.port = int(line)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    config = {
        "jobs": args.jobs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "in_flight": args.in_flight,
        "payload_bytes": args.payload_bytes,
    }
    if args.client == "stub":
        config.update(client="stub", processes=args.processes, connections=connections(args))
    return config


def connections(args: argparse.Namespace) -> int:
    return int(args.connections or CONNECTIONS_PER_PROCESS * args.processes)


# --- the stub client: bench/loadgen against `serve --processes N` ----------------------------


def loadgen() -> Path:
    path = Path(os.environ.get("JOBQ_BENCH_BIN") or CHECKOUT / "bench" / ".bin") / "loadgen"
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{path} is missing: bench/run builds it, or `go build -C bench/loadgen -o ../.bin/loadgen .`"
        )
    return path


def run_loadgen(port: int, args: argparse.Namespace) -> dict[str, Any]:
    argv = [
        str(loadgen()), "--target", f"127.0.0.1:{port}", "--kind", "echo", "--calls", str(args.jobs),
        "--concurrency", str(args.in_flight), "--connections", str(connections(args)),
        "--payload-bytes", str(args.payload_bytes), "--warmup", "1s" if args.jobs >= SMALL_RUN else "200ms",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if report["errors"]:
        raise RuntimeError(f"loadgen: calls failed: {report['errors']}")
    return report


def measure_stub(args: argparse.Namespace) -> dict[str, Any]:
    """`serve --processes N` (a supervisor and N servers) under bench/loadgen's calls."""
    argv = [sys.executable, __file__, "serve", "--processes", str(args.processes)]
    serve = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        port = int(serve.stdout.readline() or 0)
        if not port:
            raise RuntimeError("echo.py serve exited at start")
        pids = process_tree(serve.pid)
        cpu0 = tree_cpu_seconds(pids)
        report = run_loadgen(port, args)
        server_cpu = tree_cpu_seconds(pids) - cpu0
    finally:
        serve.terminate()  # SIGTERM: serve stops its servers
        serve.wait()
    calls = report["calls"] + report["warmup_calls"]  # the server answered the warm-up too
    notes = (
        f"bench/loadgen (Go) unary echo of {args.payload_bytes} B, {args.in_flight} calls in flight over "
        f"{connections(args)} connections to `serve --processes {args.processes}` ({len(pids)} processes "
        "with the supervisor); server CPU per call over the load generator's whole run, warm-up included"
    )
    return {
        "jobs": report["calls"],
        "seconds": report["seconds"],
        "latency_ms": {k: round(v, 3) for k, v in report["latency_ms"].items()},
        "server_cpu_us_per_job": server_cpu * 1e6 / calls,
        "producer_cpu_us_per_job": report["loadgen_cpu_us_per_call"],
        "notes": notes,
        "extra": {"server_processes": len(pids), "producer_report": report},
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.client == "stub":
        return protocol_line(args, measure_stub(args))
    if args.scenario in ("latency_idle", "latency_rate"):
        return protocol_line(args, measure_relay(args))
    server = Server(args.jobs, args.payload_bytes)
    try:
        cpu0 = server.cpu_seconds()
        if args.scenario == "enqueue_unary":
            result = run_loop(run_unary(server.port, args.jobs, args.in_flight, args.payload_bytes))
            worker_cpu = None
            notes = f"unary echo of {args.payload_bytes} B, {args.in_flight} calls in flight on one channel"
        else:
            result = run_drain(server.port, args.jobs, args.workers, args.concurrency, args.payload_bytes)
            worker_cpu = result.pop("worker_cpu_s")
            notes = (
                f"bidi stream per worker process: windows of {args.concurrency} items "
                f"(8-byte id + {args.payload_bytes} B), one ack message per window"
            )
        server_cpu = server.cpu_seconds() - cpu0
    finally:
        server.stop()
    jobs = result["jobs"]
    return protocol_line(
        args,
        {
            **result,
            "server_cpu_us_per_job": server_cpu * 1e6 / jobs,
            "worker_cpu_us_per_job": worker_cpu * 1e6 / jobs if worker_cpu is not None else None,
            "notes": notes,
        },
    )


def protocol_line(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    """bench/PROTOCOL.md's line from what a scenario measured."""
    jobs, seconds = measured["jobs"], measured["seconds"]
    line = {
        "system": SYSTEM,
        "scenario": args.scenario,
        "config": config_of(args),
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_second": jobs / seconds if seconds > 0 else None,
        "latency_ms": measured.get("latency_ms"),
        "cost": {
            "redis_commands_per_job": None,
            "redis_script_calls_per_job": None,
            "redis_cpu_us_per_job": None,
            "server_cpu_us_per_job": measured["server_cpu_us_per_job"],
            "worker_cpu_us_per_job": measured.get("worker_cpu_us_per_job"),
            "producer_cpu_us_per_job": measured.get("producer_cpu_us_per_job"),
        },
        "versions": versions(),
        "notes": measured["notes"] + f"; {event_loop()} event loop, raw-bytes generic handlers, no Redis",
    }
    if "extra" in measured:
        line["extra"] = measured["extra"]
    return line


def versions() -> dict[str, str]:
    found = {"grpcio": grpc.__version__, "python": platform.python_version()}
    if event_loop() == "uvloop":
        found["uvloop"] = importlib.metadata.version("uvloop")
    return found


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--redis-url", default=None, help="accepted and unused: no Redis here")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--payload-bytes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument(
        "--client",
        choices=("python", "stub"),
        default="python",
        help="enqueue_unary: grpc.aio or bench/loadgen",
    )
    parser.add_argument("--processes", type=int, default=1, help="server processes (--client stub)")
    parser.add_argument("--connections", type=int, default=0, help="loadgen connections; 0: 4 per process")
    args = parser.parse_args(argv)
    if args.client == "stub" and args.scenario == "drain":
        parser.error("--client stub is enqueue_unary's")
    if not 1 <= args.processes <= MAX_PROCESSES:
        parser.error(f"--processes must be 1 to {MAX_PROCESSES}")
    return args


def internal(argv: list[str]) -> None:
    """The child roles: `_serve` (the server), `_worker` (one drain stream) and `_relay_worker`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("_serve", "_worker", "_relay_worker"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--payload-bytes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args(argv)
    if args.role == "_serve":
        run_loop(serve(args.jobs, args.payload_bytes, args.host, args.port))
    elif args.role == "_relay_worker":
        print(json.dumps(run_loop(relay_work(args.port, args.jobs))), flush=True)
    else:
        report = run_loop(work(args.port, args.concurrency, args.payload_bytes))
        print(json.dumps(report), flush=True)


# --- serve only: the ceiling for an outside load generator -----------------------------------


def serve_only(argv: list[str]) -> int:
    """N echo servers on one port until SIGTERM or SIGINT; 1 when one of them died first."""
    parser = argparse.ArgumentParser(prog="echo.py serve", description=serve_only.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= MAX_PROCESSES:
        parser.error(f"--processes must be 1 to {MAX_PROCESSES}")
    # Signals wake the select below through this socket, so none is lost between checks.
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, lambda *_: None)
    servers: list[Server] = []
    try:
        servers.append(Server(0, 0, args.host, args.port))
        port = servers[0].port  # the others bind the port the first one got
        servers += [Server(0, 0, args.host, port) for _ in range(args.processes - 1)]
        print(port, flush=True)
        log(f"serving on {args.host}:{port} with {args.processes} process(es)")
        return _wait_for_stop(wake_r, servers)
    finally:
        for server in servers:
            server.stop()


def _wait_for_stop(wake: socket.socket, servers: list[Server]) -> int:
    while True:
        select.select([wake], [], [])
        signals = wake.recv(256)
        if signal.SIGTERM in signals or signal.SIGINT in signals:
            return 0
        if any(server.proc.poll() is not None for server in servers):
            log("a server process exited; stopping the others")
            return 1


def main(argv: list[str]) -> int:
    if argv and argv[0].startswith("_"):
        internal(argv)
        return 0
    if argv and argv[0] == "serve":
        return serve_only(argv[1:])
    args = parse_args(argv)
    if args.scenario not in ("enqueue_unary", "drain", "latency_idle", "latency_rate"):
        why = "a bare gRPC echo has no queue: enqueue_batch and end_to_end have no ceiling here"
        print(json.dumps({"system": SYSTEM, "scenario": args.scenario, "skipped": why}), flush=True)
        return 0
    try:
        print(json.dumps(measure(args)), flush=True)
    except Exception as error:  # the line on stdout is the contract; the why goes to stderr
        log(f"failed: {error!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
