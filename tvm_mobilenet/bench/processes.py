"""`bench --processes N`: latency between processes, the way an app sees it. Each system runs in N
separate processes per thread count, taken in turns (the order rotates per round) so a change in
the machine's load hits all alike; each process reports its own median.

Ours is `python -m tvm_mobilenet.run X.so --repeat R --json` with TVM_NUM_THREADS set: the runtime
only, the VM's own call loop, as the C++ app and `run` take it; with `app`, also the C++ app
itself (`mobilenet_app X.so --repeat R`, its latency line), the deployed path without Python. A
peer runs in a child of this module (`python -m tvm_mobilenet.bench.processes SPEC`): built at the
thread count, one warm-up call, R timed back-to-back calls.

Why: at 2 threads on a 2-vCPU KVM guest TVM's thread pool was bimodal between processes (5.9 or
8.4 ms per call for MobileNet 1.0/224, 2026-11-26), which one process's median cannot show."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tvm_mobilenet.bench.api import BenchArgs, available_peers, compile_ours
from tvm_mobilenet.bench.harness import aligned
from tvm_mobilenet.bench.machine import Machine
from tvm_mobilenet.bench.report import OURS
from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet

STEADY_SPREAD = 1.10  # issue 15: per-process medians within 10 %
PROCESS_TIMEOUT = 900
OURS_APP = "tvm_mobilenet_app"  # ours through the C++ app
APP_LATENCY = re.compile(r"^latency: median ([0-9.]+) ms", re.MULTILINE)


@dataclass
class ProcessMedian:
    name: str
    threads: int
    median_ms: float
    load: float  # 1-minute load average when the process started


@dataclass
class SpreadReport:
    config: ModelConfig
    threads: list[int]
    repeat: int
    processes: int
    labels: dict[str, str] = field(default_factory=dict)
    rows: list[ProcessMedian] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: Machine = field(default_factory=Machine)  # where and when the run started

    def medians(self, name: str, threads: int) -> list[float]:
        return [r.median_ms for r in self.rows if r.name == name and r.threads == threads]

    def spread(self, name: str, threads: int) -> float | None:
        """The slowest process's median over the fastest's."""
        medians = self.medians(name, threads)
        return max(medians) / min(medians) if medians else None

    def as_dict(self) -> dict:
        return {
            "machine": self.machine.as_dict(),
            "model": self.config.key,
            "threads": self.threads,
            "repeat": self.repeat,
            "processes": self.processes,
            "rows": [asdict(row) for row in self.rows],
            "spread": {
                f"{name}@{n}": self.spread(name, n) for name in self.labels for n in self.threads
            },
            "notes": self.notes,
        }


def format_spread(report: SpreadReport) -> str:
    c = report.config
    lines = [
        report.machine.describe(),
        f"MobileNet v1 alpha={c.alpha} resolution={c.resolution} batch={c.batch}, fp32: "
        f"{report.processes} processes per system and thread count, each the median of "
        f"{report.repeat} calls (ours through `run`"
        + (", and through the C++ app" if OURS_APP in report.labels else "")
        + ")",
        f"{'system':16s} {'threads':>7s} {'median of medians':>17s} {'max/min':>7s}  "
        "per-process medians, ms (in order)",
    ]
    for n in report.threads:
        for name, label in report.labels.items():
            medians = report.medians(name, n)
            if medians:
                lines.append(
                    f"{label:16s} {n:7d} {statistics.median(medians):17.2f} "
                    f"{report.spread(name, n):7.2f}  " + ", ".join(f"{m:.2f}" for m in medians)
                )
    loads = [row.load for row in report.rows]
    lines.append(
        f"steady: max/min <= {STEADY_SPREAD}; load average (1 min) at the processes' start "
        f"{min(loads):.2f}-{max(loads):.2f}"
    )
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def run_process_spread(
    args: BenchArgs,
    processes: int,
    print_fn: Callable[[str], None] = print,
    app: Path | None = None,
) -> SpreadReport:
    """Time ours (and with `app`, ours through that C++ app binary) and every available peer in
    `processes` separate processes per thread count."""
    report = SpreadReport(args.config, list(args.threads), args.repeat, processes)
    peers = available_peers(args.peers, report.notes)
    report.labels = {
        OURS: OURS,
        **({OURS_APP: "ours, C++ app"} if app else {}),
        **{peer.name: peer.label for peer in peers},
    }
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_bench_") as work_dir:
        module = args.module or compile_ours(
            BuiltinMobileNet(args.config, args.weights_file, args.seed),
            _host(),
            Path(work_dir) / "ours.so",
            args.tolerance,
            print_fn,
        )
        names = list(report.labels)
        for threads in args.threads:
            for index in range(processes):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    row = _one_process(name, module, args, threads, app)
                    report.rows.append(row)
                    print_fn(
                        f"{threads} thread(s), process {index + 1}/{processes}: "
                        f"{report.labels[name]} median {row.median_ms:.2f} ms (load {row.load:.2f})"
                    )
    return report


def _host():
    from tvm_mobilenet.devices import load_device

    return load_device("x86")


def _one_process(
    name: str, module: Path, args: BenchArgs, threads: int, app: Path | None
) -> ProcessMedian:
    env = {**os.environ, "TVM_NUM_THREADS": str(threads)}
    if name == OURS_APP:
        return _app_process(app, module, args.repeat, threads, env)
    if name == OURS:
        command = ["-m", "tvm_mobilenet.run", str(module), "--repeat", str(args.repeat), "--json"]
    else:
        spec = {
            "peer": name,
            "alpha": args.config.alpha,
            "resolution": args.config.resolution,
            "batch": args.config.batch,
            "weights": str(args.weights_file) if args.weights_file else None,
            "seed": args.seed,
            "threads": threads,
            "repeat": args.repeat,
        }
        command = ["-m", "tvm_mobilenet.bench.processes", json.dumps(spec)]
    stdout, _, load = _run_child([sys.executable, *command], env, f"{name} process", threads)
    latencies = json.loads(stdout.strip().splitlines()[-1])["latencies_ms"]
    return ProcessMedian(name, threads, statistics.median(latencies), load)


def _app_process(app: Path, module: Path, repeat: int, threads: int, env: dict) -> ProcessMedian:
    """One run of the C++ app: its first call, then `repeat` timed ones (its latency line)."""
    what, hint = f"C++ app {app}", " (build it with `python -m tvm_mobilenet.bundle X.so -o DIR`)"
    command = [str(app.resolve()), str(module.resolve()), "--repeat", str(repeat)]
    _, stderr, load = _run_child(command, env, what, threads, hint)
    found = APP_LATENCY.search(stderr)
    if found is None:
        raise TvmMobilenetError(_failure(what, threads, stderr, hint))
    return ProcessMedian(OURS_APP, threads, float(found.group(1)), load)


def _run_child(
    command: list[str], env: dict, what: str, threads: int, hint: str = ""
) -> tuple[str, str, float]:
    """(stdout, stderr, the 1-minute load average at its start) of one timed child process."""
    load = os.getloadavg()[0]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise TvmMobilenetError(_failure(what, threads, done.stderr, hint))
    return done.stdout, done.stderr, load


def _failure(what: str, threads: int, stderr: str, hint: str) -> str:
    return f"the {what} at {threads} thread(s) failed: {stderr.strip()[-500:]}{hint}"


def _peer_process(spec: dict) -> dict:
    """The child: one peer, built at the thread count, one warm-up, `repeat` timed calls."""
    from tvm_mobilenet.bench.registry import PEERS
    from tvm_mobilenet.model import reference
    from tvm_mobilenet.model.weights import get_weights

    config = ModelConfig(spec["alpha"], spec["resolution"], spec["batch"])
    weights = get_weights(config, spec["weights"], spec["seed"])
    predict = PEERS[spec["peer"]]().prepare(config, weights, spec["threads"])
    data = aligned(reference.sample_input(config))
    predict(data)
    latencies = []
    for _ in range(spec["repeat"]):
        start = time.perf_counter()
        predict(data)
        latencies.append((time.perf_counter() - start) * 1e3)
    return {"latencies_ms": latencies}


if __name__ == "__main__":
    print(json.dumps(_peer_process(json.loads(sys.argv[1]))))
