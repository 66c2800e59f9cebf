"""Python entry point of the time-to-quality measurement.

Tune from an empty log while a thread notes, every few seconds, how many records the log holds. The
log only grows, so its first N records are exactly what a user who stopped tuning at that moment
would have. Afterwards each checkpoint's prefix is compiled, and all checkpoint modules are timed in
turns in one process, so the machine's load hits them alike.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tvm_mobilenet.bench.harness import time_round_robin
from tvm_mobilenet.bench.peers.ours import Ours
from tvm_mobilenet.compile.api import CompileArgs, compile_model
from tvm_mobilenet.errors import TuningLogError
from tvm_mobilenet.model.source import BuiltinMobileNet
from tvm_mobilenet.tune.api import TuneArgs, tune
from tvm_mobilenet.tune.log import META_FILE, RECORD_FILE, WORKLOAD_FILE

QUALITY = 1.2  # "within 1.2x of the final latency"
POLL_SECONDS = 5.0
TRACE_FILE = "trace.json"


@dataclass
class Checkpoint:
    seconds: float  # wall time since tuning started
    records: int  # records in the log at that time
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float | None:
        return float(np.median(self.latencies_ms)) if self.latencies_ms else None


@dataclass
class QualityReport:
    checkpoints: list[Checkpoint]
    threads: int

    @property
    def final_ms(self) -> float:
        return self.checkpoints[-1].median_ms

    def time_to_quality(self, quality: float = QUALITY) -> Checkpoint:
        """The first checkpoint within `quality` x the final latency."""
        return next(c for c in self.checkpoints if c.median_ms <= quality * self.final_ms)

    def as_dict(self) -> dict:
        return {"threads": self.threads, "checkpoints": [asdict(c) for c in self.checkpoints]}


def _count_records(log_dir: Path) -> int:
    try:
        return (log_dir / RECORD_FILE).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def trace_tuning(
    args: TuneArgs, trace_path: Path, print_fn: Callable[[str], None] = print
) -> list[tuple[float, int]]:
    """Tune `args` from an empty log; [(seconds since start, records)] each time the count changed.

    The trace is written to `trace_path` even when tuning stops early (Ctrl-C, an error)."""
    if _count_records(args.log_dir):
        raise TuningLogError(
            f"{args.log_dir} already holds records: time to quality starts from an empty log; "
            "pass --out a new directory"
        )
    start, trace, done = time.monotonic(), [(0.0, 0)], threading.Event()

    def watch():
        while not done.wait(POLL_SECONDS):
            count = _count_records(args.log_dir)
            if count != trace[-1][1]:
                trace.append((time.monotonic() - start, count))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        tune(args, print_fn)
    finally:
        done.set()
        watcher.join()
        trace.append((time.monotonic() - start, _count_records(args.log_dir)))
        save_trace(trace_path, trace)
    return trace


def checkpoints_of(trace: list[tuple[float, int]], step_seconds: float) -> list[Checkpoint]:
    """One checkpoint every `step_seconds` of the trace, plus its end (the final log)."""
    end = trace[-1][0]
    times = [i * step_seconds for i in range(int(end // step_seconds) + 1)] + [end]
    return [Checkpoint(t, max(n for s, n in trace if s <= t)) for t in times]


def log_prefix(log_dir: Path, records: int, dest: Path) -> Path:
    """A copy of the log holding only its first `records` records."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (META_FILE, WORKLOAD_FILE):
        shutil.copyfile(log_dir / name, dest / name)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    (dest / RECORD_FILE).write_bytes(b"".join(lines[:records]))
    return dest


def evaluate(
    model: BuiltinMobileNet,
    args: TuneArgs,
    checkpoints: list[Checkpoint],
    work_dir: Path,
    threads: int,
    repeat: int,
    print_fn: Callable[[str], None] = print,
) -> QualityReport:
    """Compile each checkpoint's log prefix, then time all of them in turns."""
    arm = Arm("", args, checkpoints)
    return evaluate_arms(model, [arm], work_dir, threads, repeat, print_fn)[""]


@dataclass
class Arm:
    """One tuning run of a comparison (e.g. cold and warm-started), its log and checkpoints."""

    name: str
    args: TuneArgs
    checkpoints: list[Checkpoint]


def evaluate_arms(
    model: BuiltinMobileNet,
    arms: list[Arm],
    work_dir: Path,
    threads: int,
    repeat: int,
    print_fn: Callable[[str], None] = print,
) -> dict[str, QualityReport]:
    """Compile every checkpoint of every arm, then time all of them in turns in one process (the
    machine's load hits every arm alike)."""
    predictors = {}
    for arm in arms:
        for index, checkpoint in enumerate(arm.checkpoints):
            name = f"{arm.name}{'_' if arm.name else ''}{index:02d}"
            prefix = log_prefix(arm.args.log_dir, checkpoint.records, work_dir / f"log_{name}")
            print_fn(
                f"checkpoint {arm.name + ' ' if arm.name else ''}{index}: "
                f"{checkpoint.seconds / 60:.1f} min, {checkpoint.records} records"
            )
            output = work_dir / f"mobilenet_{name}.so"
            compile_model(
                CompileArgs(model=model, device=arm.args.device, output=output, log_dir=prefix),
                print_fn=lambda _line: None,
            )
            predictors[(arm.name, index)] = Ours(output).prepare(model.config, {}, threads)
    latencies = time_round_robin(predictors, model.sample_input(), repeat)
    for (arm_name, index), values in latencies.items():
        next(a for a in arms if a.name == arm_name).checkpoints[index].latencies_ms = values
    return {arm.name: QualityReport(arm.checkpoints, threads) for arm in arms}


def save_trace(path: Path, trace: list[tuple[float, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace) + "\n")


def load_trace(path: Path) -> list[tuple[float, int]]:
    try:
        return [tuple(point) for point in json.loads(path.read_text())]
    except (OSError, json.JSONDecodeError) as err:
        raise TuningLogError(
            f"no readable trace {path} ({err}); run without --evaluate-only first"
        ) from None
