"""Tune a model's tasks with MetaSchedule and an XGBoost cost model, resuming from the log."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import tvm
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TuningError
from tvm_mobilenet.run.threads import available_cores
from tvm_mobilenet.tasks.extract import Task
from tvm_mobilenet.tune.log import TuningLog
from tvm_mobilenet.tune.measure import make_builder, make_runner
from tvm_mobilenet.tune.progress import Progress, ProgressCallback, mean_seconds
from tvm_mobilenet.tune.startup import import_tensor_intrinsics

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


def make_strategy() -> ms.search_strategy.EvolutionarySearch:
    """MetaSchedule's evolutionary search, sized for budgets of tens of trials per task: its
    default population (512) spends most of a batch's time extracting features for predictions."""
    return ms.search_strategy.EvolutionarySearch(population_size=128, init_min_unmeasured=32)


def make_cost_model() -> ms.cost_model.XGBModel:
    return ms.cost_model.XGBModel(
        extractor=ms.feature_extractor.PerStoreFeature(),
        adaptive_training=True,
        num_warmup_samples=XGB_WARMUP_SAMPLES,
        num_tuning_cores=available_cores(),
    )


def _tune_one(
    ctx: ms.TuneContext,
    trials: int,
    log: TuningLog,
    builder,
    runner,
    cost_model,
    progress: Progress,
    callbacks=(),
) -> None:
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
            measure_callbacks=[
                *ms.measure_callback.MeasureCallback.create("default"),
                ProgressCallback(progress),
                *callbacks,
            ],
            task_scheduler="round-robin",
        )


def measure_schedule(sch, task: Task, log: TuningLog, target: tvm.target.Target, builder, runner):
    """Build and measure one schedule of `task` and commit it to the log; returns (secs, error)."""
    built = builder.build([ms.builder.BuilderInput(sch.mod, target)])[0]
    if built.error_msg:
        return None, built.error_msg
    args_info = ms.arg_info.ArgInfo.from_prim_func(sch.mod["main"])
    try:
        device_type = target.kind.name if target.kind.name != "llvm" else "cpu"
        ran = runner.run([ms.runner.RunnerInput(built.artifact_path, device_type, args_info)])[
            0
        ].result()
    finally:
        ms.utils.remove_build_dir(built.artifact_path)
    workload = log.database.commit_workload(task.mod)
    run_secs = ran.run_secs if not ran.error_msg else [1e10]
    log.database.commit_tuning_record(
        ms.database.TuningRecord(
            sch.trace, workload, [float(s) for s in run_secs], target, args_info
        )
    )
    return (None, ran.error_msg) if ran.error_msg else (mean_seconds(run_secs), None)


def tune_tasks(
    tasks: list[Task],
    trials: list[int],
    log: TuningLog,
    target: tvm.target.Target,
    space_for: Callable[[Task], object],
    builder=None,
    runner=None,
    seed: int = 0,
    print_fn: Callable[[str], None] = print,
    strategy=None,
    start_from: Callable[[Task], object] | None = None,
    callbacks=(),
) -> TuneReport:
    """Bring each task up to its number of trials in the log; records already there count.

    `space_for(task)` gives the MetaSchedule space generator of a task; `strategy` the search
    strategy (default `make_strategy()`). `start_from(task)` may give a schedule
    (the template's heuristic one) measured first: the search then starts from it, and the
    tuned result is never slower than the untuned default. `callbacks` are extra MetaSchedule
    measure callbacks (run after each measured batch is in the log). Raises TuningError for a
    task that ends with no valid candidate (all rejected or failed), after the others are tuned."""
    import_tensor_intrinsics()  # before MetaSchedule does it the slow way
    report = TuneReport(str(log.path))
    missing = [
        max(want - len(log.records_of(task.mod)), 0)
        for task, want in zip(tasks, trials, strict=True)
    ]
    progress = Progress(sum(missing), print_fn)
    builder = builder or make_builder()
    runner = runner or make_runner()
    cost_model = make_cost_model()
    failures = []
    for index, (task, want, todo) in enumerate(zip(tasks, trials, missing, strict=True), start=1):
        label = f"[{index}/{len(tasks)}] {task.kind:9s} {task.shape}"
        if todo == 0:
            print_fn(f"{label}  {want} trials already in the log, skipped")
        else:
            progress.start_task(label, todo, log.best_seconds(task.mod))
            first = (
                start_from(task)
                if start_from is not None and not log.records_of(task.mod)
                else None
            )
            if first is not None:
                progress.record([measure_schedule(first, task, log, target, builder, runner)])
            searched = todo - (first is not None)
            if searched > 0:
                ctx = ms.TuneContext(
                    mod=task.mod,
                    target=target,
                    space_generator=space_for(task),
                    search_strategy=strategy or make_strategy(),
                    task_name=task.name,
                    rand_state=seed + index,
                    num_threads=available_cores(),
                )
                _tune_one(ctx, searched, log, builder, runner, cost_model, progress, callbacks)
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
