"""Tune a model's tasks with MetaSchedule and an XGBoost cost model, resuming from the log."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import tvm
from tvm.s_tir import meta_schedule as ms

from .errors import TuningError
from .measure import make_builder, make_runner
from .progress import Progress, ProgressCallback
from .tasks import Task
from .tuning_log import TuningLog

TRIALS_PER_ITER = 16
# MetaSchedule's XGBModel predicts at random below num_warmup_samples measured candidates; its
# default of 100 would leave small budgets unsteered. One batch is enough to start ranking.
XGB_WARMUP_SAMPLES = TRIALS_PER_ITER


@dataclass
class TaskResult:
    task: Task
    trials: int  # records in the log for this task (this and earlier runs)
    measured_now: int
    best_seconds: float | None

    @property
    def gflops(self) -> float | None:
        if not self.best_seconds:
            return None
        return self.task.flops / self.best_seconds / 1e9


@dataclass
class TuneReport:
    log_dir: str
    results: list[TaskResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def measured_now(self) -> int:
        return sum(r.measured_now for r in self.results)


def allocate_trials(tasks: list[Task], total: int) -> list[int]:
    """Split `total` trials over tasks: equal shares, the remainder to the costliest tasks.

    Depthwise tasks have few FLOPs but are memory-bound and often as slow as pointwise ones,
    so FLOP-proportional shares would starve them.
    """
    if not tasks:
        return []
    share, rest = divmod(total, len(tasks))
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].flops * tasks[i].weight)
    trials = [share] * len(tasks)
    for index in order[:rest]:
        trials[index] += 1
    return trials


def make_cost_model() -> ms.cost_model.XGBModel:
    return ms.cost_model.XGBModel(
        extractor=ms.feature_extractor.PerStoreFeature(),
        adaptive_training=True,
        num_warmup_samples=XGB_WARMUP_SAMPLES,
        num_tuning_cores=len(os.sched_getaffinity(0)),
    )


def _tune_one(ctx: ms.TuneContext, trials: int, log: TuningLog, builder, runner, cost_model,
              progress: Progress, callbacks=()) -> None:
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_ms_") as scratch:
        ms.tune.tune_tasks(
            tasks=[ctx],
            task_weights=[1.0],
            work_dir=scratch,  # MetaSchedule's own text logs; records go to `log.database`
            max_trials_global=trials,
            num_trials_per_iter=min(TRIALS_PER_ITER, trials),
            builder=builder,
            runner=runner,
            database=log.database,
            cost_model=cost_model,
            measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"),
                               ProgressCallback(progress), *callbacks],
            task_scheduler="round-robin",
        )


def tune_tasks(tasks: list[Task], trials: list[int], log: TuningLog, target: tvm.target.Target,
               space_for: Callable[[Task], object], builder=None, runner=None, seed: int = 0,
               print_fn: Callable[[str], None] = print, callbacks=()) -> TuneReport:
    """Bring each task up to its number of trials in the log; records already there count.

    `space_for(task)` gives the MetaSchedule space generator of a task; `callbacks` are extra
    MetaSchedule measure callbacks (run after each measured batch is in the log). Raises TuningError for a
    task that ends with no valid candidate (all rejected or failed), after the others are tuned.
    """
    report = TuneReport(str(log.path))
    missing = [max(want - len(log.records_of(task.mod)), 0) for task, want in zip(tasks, trials)]
    progress = Progress(sum(missing), print_fn)
    builder = builder or make_builder()
    runner = runner or make_runner()
    cost_model = make_cost_model()
    failures = []
    for index, (task, want, todo) in enumerate(zip(tasks, trials, missing), start=1):
        label = f"[{index}/{len(tasks)}] {task.kind:9s} {task.shape}"
        if todo == 0:
            print_fn(f"{label}  {want} trials already in the log, skipped")
        else:
            progress.start_task(label, todo, log.best_seconds(task.mod))
            ctx = ms.TuneContext(
                mod=task.mod, target=target, space_generator=space_for(task),
                search_strategy="evolutionary", task_name=task.name, rand_state=seed + index,
                num_threads=int(target.attrs.get("num-cores", 1)) if target.kind.name == "llvm" else "physical",
            )
            _tune_one(ctx, todo, log, builder, runner, cost_model, progress, callbacks)
        best = log.best_seconds(task.mod)
        report.results.append(TaskResult(task, len(log.records_of(task.mod)), todo, best))
        if best is None and want:
            reason = _first_error(progress.errors) if todo else "no valid record in the log"
            failures.append(f"{task.name} ({task.kind} {task.shape}): {reason}")
    report.seconds = progress.elapsed()
    if failures:
        error = TuningError(
            f"{len(failures)} task(s) have no valid schedule after tuning: {failures[0]}"
            + ("" if len(failures) == 1 else f" (and {len(failures) - 1} more)")
            + f"; every record is kept in {log.path}"
        )
        error.report = report
        raise error
    return report


def _first_error(errors: list[str]) -> str:
    """The last line of the first error (MetaSchedule errors end with the actual message)."""
    if not errors:
        return "every candidate was rejected before measurement (see MetaSchedule's postprocessors)"
    lines = [line for line in errors[0].strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
