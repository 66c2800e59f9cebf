"""Warm start: the best schedules of another device's log, measured again on this device.

A log made elsewhere says which schedules were fast *there*. Its best records for the tasks this
model shares with it are replayed on this model's tasks and measured here, as the first
candidates of each task, through the normal measurement path: they become this device's records,
with this device's target and times, and MetaSchedule's evolutionary search starts its population
from the best records in the log. A foreign record never reaches a build unmeasured (compile
reads only the device's own log).

The nearest log (`auto`): the same target family; then the closest vector width (AVX-512 / AVX2 /
NEON) and the same CPU; then the same model; then the most tasks in common (another MobileNet
α/resolution shares some shapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tvm

from tvm_mobilenet.errors import WarmStartError
from tvm_mobilenet.tasks.extract import Task
from tvm_mobilenet.tune.catalogue import LogEntry, find_logs, read_entry
from tvm_mobilenet.tune.log import TuningLog, may_hold, open_snapshot
from tvm_mobilenet.tune.progress import mean_seconds

WARM_TOP_K = 3  # best records per task taken from the warm-start log
PICK_FROM_CATALOGUE = "`tvm-mobilenet logs` lists the logs to choose from"
_VECTOR_FEATURES = (("avx512f", 512), ("avx2", 256), ("avx", 256), ("neon", 128), ("sse2", 128))


def vector_bits(target_config: dict) -> int:
    """The widest SIMD registers of a CPU target (0 for a GPU or an unknown CPU)."""
    try:
        target = tvm.target.Target(target_config)
        if target.kind.name != "llvm":
            return 0
        features = set(tvm.target.codegen.llvm_get_cpu_features(target))
    except Exception:  # an LLVM without this architecture's backend: rank it last
        return 0
    if target.attrs.get("mtriple", "").startswith("aarch64"):
        features.add("neon")
    return next((bits for name, bits in _VECTOR_FEATURES if name in features), 0)


def check_warm_start_dir(path: Path, family: str) -> LogEntry:
    """The catalogue entry of a --warm-start DIR; WarmStartError if it is no log, or a log of
    another target family (its schedules could not even be built here)."""
    entry = read_entry(Path(path), "given")
    if entry is None:
        raise WarmStartError(
            f"--warm-start {path} is not a tuning log (no readable tvm_mobilenet.json); "
            f"{PICK_FROM_CATALOGUE}"
        )
    if entry.family != family:
        raise WarmStartError(
            f"--warm-start {path} is a log for target '{entry.family}' ({entry.device}); a "
            f"'{family}' tune can only warm-start from a '{family}' log: {PICK_FROM_CATALOGUE}"
        )
    return entry


@dataclass
class WarmStart:
    """The log chosen to warm-start from, and its best schedules per matching task."""

    entry: LogEntry
    schedules: dict[str, list]  # task name -> schedules of the task's module, best first

    def for_task(self, task: Task) -> list:
        return self.schedules.get(task.name, [])

    def describe(self, task_count: int) -> str:
        e = self.entry
        count = sum(len(s) for s in self.schedules.values())
        return (
            f"warm start from {e.path} ({e.device_class}, {e.model_name}): its {count} best "
            f"schedules for {len(self.schedules)} of {task_count} tasks, measured here first "
            "(within each task's trials; none is used unmeasured)"
        )


def _best_schedules(log: TuningLog, task: Task, top_k: int) -> list:
    """The top `top_k` valid records of `task` in `log`, replayed on the task's module."""
    if not log.database.has_workload(task.mod):
        return []
    workload = log.database.commit_workload(task.mod)  # present: returns it, writes nothing
    schedules = []
    for record in log.database.get_top_k(workload, top_k):
        if mean_seconds(record.run_secs) is None:
            continue
        sch = tvm.s_tir.Schedule(task.mod)
        try:
            record.trace.apply_to_schedule(sch, remove_postproc=False)
        except Exception:  # a trace TVM cannot replay on this module: not a candidate
            continue
        schedules.append(sch)
    return schedules


def load_warm_start(entry: LogEntry, tasks: list[Task], top_k: int = WARM_TOP_K) -> WarmStart:
    """The best schedules of `entry`'s log for the tasks it shares with `tasks`."""
    if not may_hold(entry.path, [task.mod for task in tasks]):
        return WarmStart(entry, {})
    log = open_snapshot(entry.path)
    try:
        schedules = {task.name: _best_schedules(log, task, top_k) for task in tasks}
    finally:
        log.close()
    return WarmStart(entry, {name: s for name, s in schedules.items() if s})


def _nearness(entry: LogEntry, target_config: dict, model_key: dict) -> tuple:
    """Sort key of a candidate log: closest vector width, same CPU, same model, most records."""
    return (
        abs(vector_bits(entry.target) - vector_bits(target_config)),
        entry.target.get("mcpu") != target_config.get("mcpu"),
        entry.model != model_key,
        -entry.valid_records,
    )


def choose_warm_start(
    family: str,
    target_config: dict,
    model_key: dict,
    tasks: list[Task],
    own_log: Path,
    catalogue: list[LogEntry] | None = None,
) -> WarmStart | None:
    """The nearest log of the same target family that shares at least one task with `tasks`
    (None if there is none): see the module's docstring for the order."""
    own = Path(own_log).resolve()
    candidates = [
        entry
        for entry in (find_logs() if catalogue is None else catalogue)
        if entry.family == family and entry.valid_records and entry.path.resolve() != own
    ]
    candidates.sort(key=lambda e: _nearness(e, target_config, model_key))
    for entry in candidates:
        warm = load_warm_start(entry, tasks)
        if warm.schedules:
            return warm
    return None
