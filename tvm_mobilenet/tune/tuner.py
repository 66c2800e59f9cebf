"""Tune a model's tasks with MetaSchedule and an XGBoost cost model, resuming from the log.

Only valid records count as trials: a candidate that failed (a build error, a timeout, a device
lost) stays in the log for diagnosis, and the same command measures what it left undone.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TuningError, TuningLogError
from tvm_mobilenet.run.threads import available_cores
from tvm_mobilenet.tasks.extract import Task
from tvm_mobilenet.tune.interrupt import (
    CtrlC,
    StoppableBuilder,
    StoppableCostModel,
    StoppableRunner,
)
from tvm_mobilenet.tune.log import TuningLog
from tvm_mobilenet.tune.measure import make_builder, make_runner
from tvm_mobilenet.tune.progress import (
    FAILED_RUN_SECS,
    Progress,
    ProgressCallback,
    last_line,
    mean_seconds,
)
from tvm_mobilenet.tune.startup import import_tensor_intrinsics

TRIALS_PER_ITER = 16
HEURISTIC, WARM = "heuristic", "warm"  # where a schedule measured before the search comes from
# MetaSchedule's XGBModel predicts at random below num_warmup_samples measured candidates; its
# default of 100 would leave small budgets unsteered. One batch is enough to start ranking.
XGB_WARMUP_SAMPLES = TRIALS_PER_ITER


@dataclass
class TaskResult:
    task: Task
    trials: int  # valid records in the log for this task (this and earlier runs)
    measured_now: int  # candidates measured in this run, failed ones included
    best_seconds: float | None
    failed_now: int = 0
    first_error: str | None = None  # of this task's candidates that failed in this run

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

    @property
    def failed_now(self) -> int:
        return sum(r.failed_now for r in self.results)

    @property
    def first_error(self) -> str | None:
        return next((r.first_error for r in self.results if r.first_error), None)


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


# The budget by gain: FIRST_SHARE of the trials is shared equally (each task's untuned schedule
# and a first search), the rest goes one batch at a time to the task whose next batch promises the
# largest saving of model time: its share of the model (weight x best time) x the relative gain of
# its last batch (PRIOR_GAIN before it had one here, never below FLOOR_GAIN, so a task that matters
# keeps getting batches while the others have stalled). Like Ansor's gradient task scheduler,
# without its forward-looking estimate.
FIRST_SHARE = 0.5
PRIOR_GAIN = 0.10
FLOOR_GAIN = 0.02


def split_budget(tasks: list[Task], total: int) -> tuple[list[int], int]:
    """(the equal first share of each task, the trials left to spend by gain)."""
    first = min(total, max(len(tasks), round(total * FIRST_SHARE)))
    return allocate_trials(tasks, first), total - first


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


def commit(log: TuningLog, workload, trace, target, args_info, run_secs, error, ctrl_c) -> None:
    """Record one measured candidate, a failed one as MetaSchedule does (run_secs [1e10]); one cut
    short by Ctrl-C is no failure of its own and is not recorded."""
    if error and ctrl_c.requested:
        return
    secs = [FAILED_RUN_SECS] if error or not run_secs else [float(s) for s in run_secs]
    log.database.commit_tuning_record(
        ms.database.TuningRecord(trace, workload, secs, target, args_info)
    )


@derived_object
class CommitBatch(ms.measure_callback.PyMeasureCallback):
    """MetaSchedule's AddToDatabase for one task, with `commit`'s rule for interrupted
    candidates."""

    def __init__(self, log: TuningLog, task: Task, target, ctrl_c: CtrlC):
        self.log, self.task, self.target, self.ctrl_c = log, task, target, ctrl_c

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        workload = self.log.commit_workload(self.task.mod)
        for candidate, built, ran in zip(
            measure_candidates, builder_results, runner_results, strict=True
        ):
            error = built.error_msg or ran.error_msg
            trace, args = candidate.sch.trace, candidate.args_info
            commit(self.log, workload, trace, self.target, args, ran.run_secs, error, self.ctrl_c)


@derived_object
class StopIfNeeded(ms.measure_callback.PyMeasureCallback):
    """After a batch is committed: every line must be in the log (a full disk stops the run), and
    a Ctrl-C stops it here, at a point where raising through TVM is safe."""

    def __init__(self, log: TuningLog, ctrl_c: CtrlC):
        self.log = log
        self.ctrl_c = ctrl_c
        self.error: TuningLogError | None = None

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        try:
            self.log.check_written()
        except TuningLogError as err:
            self.error = err  # MetaSchedule re-raises it as a RuntimeError
            raise
        self.ctrl_c.stop_if_requested()


@dataclass
class _Run:
    """What every task of one `tune_tasks` call is tuned with."""

    log: TuningLog
    target: tvm.target.Target
    space_for: Callable[[Task], object]
    builder: object
    runner: object
    strategy: object | None
    seed: int
    progress: Progress
    ctrl_c: CtrlC
    callbacks: list  # the caller's, run after each batch is in the log
    cost_model: object
    stop: StopIfNeeded = field(init=False)

    def measure_callbacks(self, task: Task) -> list:
        """MetaSchedule's default callbacks, with its AddToDatabase replaced by CommitBatch."""
        return [
            CommitBatch(self.log, task, self.target, self.ctrl_c),
            ms.measure_callback.RemoveBuildArtifact(),
            self.stop,
            ms.measure_callback.UpdateCostModel(),
            ProgressCallback(self.progress),
            *self.callbacks,
        ]

    def __post_init__(self):
        self.stop = StopIfNeeded(self.log, self.ctrl_c)
        self.builder = StoppableBuilder(self.builder, self.ctrl_c)
        self.runner = StoppableRunner(self.runner, self.ctrl_c)
        self.cost_model = StoppableCostModel(self.cost_model, self.ctrl_c)


def _search(run: _Run, task: Task, trials: int, rand_state: int) -> None:
    ctx = ms.TuneContext(
        mod=task.mod,
        target=run.target,
        space_generator=run.space_for(task),
        search_strategy=run.strategy or make_strategy(),
        task_name=task.name,
        rand_state=rand_state,
        num_threads=available_cores(),
    )
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_ms_") as scratch:
        ms.tune.tune_tasks(
            tasks=[ctx],
            task_weights=[1.0],
            work_dir=scratch,  # MetaSchedule's own text logs; records go to `log.database`
            max_trials_global=trials,
            num_trials_per_iter=min(TRIALS_PER_ITER, trials),
            builder=run.builder,
            runner=run.runner,
            database=run.log.database,
            cost_model=run.cost_model,
            measure_callbacks=run.measure_callbacks(task),
            task_scheduler="round-robin",
        )


Measured = tuple[float | None, str | None]  # (mean seconds, None) or (None, error)


def measure_schedules(run: _Run, task: Task, schedules: list) -> list[Measured]:
    """Build and measure schedules of `task` as one batch (one start of the builder's and the
    runner's workers) and commit them to the log; returns (secs, error) per schedule."""
    if not schedules:
        return []
    built = run.builder.build([ms.builder.BuilderInput(s.mod, run.target) for s in schedules])
    args_info = ms.arg_info.ArgInfo.from_prim_func(schedules[0].mod["main"])
    device = "cpu" if run.target.kind.name == "llvm" else run.target.kind.name
    to_run = [i for i, b in enumerate(built) if not b.error_msg]
    try:
        inputs = [ms.runner.RunnerInput(built[i].artifact_path, device, args_info) for i in to_run]
        futures = dict(zip(to_run, run.runner.run(inputs) if inputs else [], strict=True))
        ran = {i: future.result() for i, future in futures.items()}
    finally:
        for i in to_run:
            ms.utils.remove_build_dir(built[i].artifact_path)
    workload = run.log.commit_workload(task.mod)
    results, measured = [], []
    for i, sch in enumerate(schedules):
        error = built[i].error_msg or ran[i].error_msg
        run_secs = None if built[i].error_msg else ran[i].run_secs
        commit(run.log, workload, sch.trace, run.target, args_info, run_secs, error, run.ctrl_c)
        results.append((None, error) if error else (mean_seconds(run_secs), None))
        measured.append(ms.runner.RunnerResult(None if error else run_secs, error))
    run.log.check_written()
    _teach_cost_model(run, task, schedules, args_info, measured)
    return results


def _teach_cost_model(run: _Run, task: Task, schedules: list, args_info, measured: list) -> None:
    """Train the shared XGBoost model on schedules measured outside a search (the untuned and
    warm-start ones), as MetaSchedule's UpdateCostModel does after each searched batch: the search
    that follows ranks its first candidates with them."""
    context = ms.TuneContext(
        mod=task.mod, target=run.target, task_name=task.name, num_threads=available_cores()
    )
    candidates = [ms.MeasureCandidate(sch, args_info) for sch in schedules]
    run.cost_model.update(context, candidates, measured)


def _firsts_to_measure(log: TuningLog, task: Task, start_from, warm_from) -> list:
    """The schedules to measure before the search: the untuned one, then the warm-start ones,
    each unless the log already holds a valid record of its trace."""
    firsts = [(HEURISTIC, start_from(task))] if start_from is not None else []
    firsts += [(WARM, sch) for sch in warm_from(task)] if warm_from is not None else []
    seen = {str(r.trace.as_json()) for r in log.valid_records_of(task.mod)}
    todo = []
    for origin, sch in firsts:
        trace = str(sch.trace.as_json()) if sch is not None else None
        if trace is not None and trace not in seen:
            seen.add(trace)
            todo.append((origin, sch))
    return todo


def _describe_firsts(firsts: list) -> str | None:
    """E.g. "the untuned schedule and 3 warm-start schedule(s) first"."""
    origins = [origin for origin, _ in firsts]
    warm = origins.count(WARM)
    parts = ["the untuned schedule"] if HEURISTIC in origins else []
    parts += [f"{warm} warm-start schedule(s)"] if warm else []
    return " and ".join(parts) + " first" if parts else None


def _tune_task(run: _Run, index: int, task: Task, todo: int, firsts: list) -> TaskResult:
    """Measure `firsts` (the heuristic schedule, warm-start ones), then search for the rest of
    `todo`."""
    log, progress = run.log, run.progress
    best = log.best_seconds(task.mod)
    progress.start_task(_label(index, task, run), todo, best, _describe_firsts(firsts))
    log.commit_workload(task.mod)
    if firsts:
        measured = measure_schedules(run, task, [sch for _, sch in firsts])
        run.ctrl_c.stop_if_requested()
        progress.record(measured)
    searched = todo - len(firsts)
    if searched > 0:
        _search(run, task, searched, run.seed + index)
    return _result(log, task, progress.task_done, progress.task_errors)


def _spend_by_gain(
    run: _Run, tasks: list[Task], tunable: list[bool], budget: int, results: list[TaskResult]
) -> None:
    """Search a batch at a time for the most promising task until the log holds `budget` valid
    records over all tasks (or no task's space gives a new valid candidate)."""
    log, progress = run.log, run.progress
    gains: dict[int, float] = {}  # relative gain of each task's last batch in this run
    stalled: set[int] = set()  # tasks whose last batch added no valid record
    for batch in itertools.count(1):
        left = budget - sum(len(log.valid_records_of(t.mod)) for t in tasks)
        if left <= 0:
            return
        open_tasks = [i for i in range(len(tasks)) if tunable[i] and i not in stalled]
        chosen = most_promising(log, tasks, open_tasks, gains)
        if chosen is None:
            return
        i, share = chosen
        task, before = tasks[i], log.best_seconds(tasks[i].mod)
        valid_before = len(log.valid_records_of(task.mod))
        note = f"by gain: {share:.0%} of the tuned time" + (
            f", last batch {gains[i]:.1%} faster" if i in gains else ""
        )
        size = min(TRIALS_PER_ITER, left)
        progress.start_task(_label(i + 1, task, run), size, before, note)
        _search(run, task, size, run.seed + batch * len(tasks) + i)
        gains[i] = 1 - log.best_seconds(task.mod) / before
        if len(log.valid_records_of(task.mod)) == valid_before:
            stalled.add(i)
        now = _result(log, task, progress.task_done, progress.task_errors)
        results[i] = _add_results(results[i], now)


def most_promising(
    log: TuningLog, tasks: list[Task], candidates: list[int], gains: dict[int, float]
) -> tuple[int, float] | None:
    """(index, share of the tuned model time) of the candidate task whose next batch promises the
    largest saving; None if no candidate has a valid record yet."""
    model_time = {
        i: tasks[i].weight * best for i in candidates if (best := log.best_seconds(tasks[i].mod))
    }
    if not model_time:
        return None
    promise = {i: t * max(gains.get(i, PRIOR_GAIN), FLOOR_GAIN) for i, t in model_time.items()}
    best = max(promise, key=promise.get)
    return best, model_time[best] / sum(model_time.values())


def _add_results(earlier: TaskResult, later: TaskResult) -> TaskResult:
    """`later` (the log as it stands) with the candidates measured by both in this run."""
    later.measured_now += earlier.measured_now
    later.failed_now += earlier.failed_now
    later.first_error = earlier.first_error or later.first_error
    return later


def _label(index: int, task: Task, run: _Run) -> str:
    return f"[{index}/{run.progress.task_count}] {task.kind:9s} {task.shape}"


def _result(log: TuningLog, task: Task, measured: int, errors: list[str]) -> TaskResult:
    return TaskResult(
        task,
        len(log.valid_records_of(task.mod)),
        measured,
        log.best_seconds(task.mod),
        len(errors),
        last_line(errors[0]) if errors else None,
    )


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
    warm_from: Callable[[Task], list] | None = None,
    by_gain: int = 0,
    cost_model=None,
) -> TuneReport:
    """Bring each task up to its number of valid trials in the log; valid records already there
    count, failed ones (kept for diagnosis) do not, so a resumed run retries them.

    `space_for(task)` gives the MetaSchedule space generator of a task; `strategy` the search
    strategy (default `make_strategy()`). `start_from(task)` may give a schedule (the template's
    heuristic one), measured first unless the log holds a valid record of it: the search then
    starts from it, and the tuned result is never slower than the untuned default.
    `warm_from(task)` may give more schedules to measure first (a warm start's, within the task's
    trials). `callbacks` are extra MetaSchedule measure callbacks (run after each measured batch
    is in the log; one that stops the run keeps its typed error in `.error`). `by_gain` more trials
    then go, a batch at a time, where they promise most (see FIRST_SHARE); a resumed run counts
    every valid record against `sum(trials) + by_gain`. `cost_model` (default `make_cost_model()`)
    learns from every measured candidate, the ones measured first included. Raises TuningError
    for a task that ends with no valid candidate (all rejected or failed), after the others are
    tuned; KeyboardInterrupt within seconds of a Ctrl-C, every record kept."""
    import_tensor_intrinsics()  # before MetaSchedule does it the slow way
    firsts = [_firsts_to_measure(log, task, start_from, warm_from) for task in tasks]
    valid = [len(log.valid_records_of(task.mod)) for task in tasks]
    todos = [
        max(want - have, int(bool(first))) if want else 0
        for have, want, first in zip(valid, trials, firsts, strict=True)
    ]
    firsts = [first[:todo] for first, todo in zip(firsts, todos, strict=True)]
    budget = sum(trials) + by_gain
    after_firsts = sum(max(have, want) for have, want in zip(valid, trials, strict=True))
    progress = Progress(sum(todos) + max(budget - after_firsts, 0), print_fn, task_count=len(tasks))
    ctrl_c = CtrlC()
    run = _Run(
        log,
        target,
        space_for,
        builder or make_builder(),
        runner or make_runner(),
        strategy,
        seed,
        progress,
        ctrl_c,
        list(callbacks),
        cost_model or make_cost_model(),
    )
    report = TuneReport(str(log.path))
    ctrl_c.install()
    try:
        for index, (task, want, todo, first) in enumerate(
            zip(tasks, trials, todos, firsts, strict=True), start=1
        ):
            if todo == 0:
                print_fn(f"{_label(index, task, run)}  {want} trials already in the log, skipped")
                report.results.append(_result(log, task, 0, []))
            else:
                report.results.append(_tune_task(run, index, task, todo, first))
        if by_gain:
            _spend_by_gain(run, tasks, [bool(n) for n in trials], budget, report.results)
    except BaseException:
        if not ctrl_c.requested:
            _raise_typed_error(run)
            raise
    finally:
        ctrl_c.uninstall()
        run.builder.close()
    if ctrl_c.requested:  # also when TVM swallowed the stop (the run then went on to its end)
        raise KeyboardInterrupt
    report.seconds = progress.elapsed()
    _fail_untuned(report, trials, log)
    return report


def _raise_typed_error(run: _Run) -> None:
    """A callback's typed error (MetaSchedule re-raises it as a RuntimeError), or a write to the
    log that failed in a way MetaSchedule reported first."""
    for callback in [run.stop, *run.callbacks]:
        error = getattr(callback, "error", None)
        if error is not None:
            raise error from None
    run.log.check_written()


def _fail_untuned(report: TuneReport, trials: list[int], log: TuningLog) -> None:
    """TuningError (carrying the report) if a task that was to be tuned has no valid record."""
    failures = [
        f"{r.task.name} ({r.task.kind} {r.task.shape}): {_no_valid_reason(r)}"
        for r, want in zip(report.results, trials, strict=True)
        if r.best_seconds is None and want
    ]
    if failures:
        error = TuningError(
            f"{len(failures)} task(s) have no valid schedule after tuning: {failures[0]}"
            + ("" if len(failures) == 1 else f" (and {len(failures) - 1} more)")
            + f"; every record is kept in {log.path}, and failed candidates do not count as "
            "trials: the same command retries them"
        )
        error.report = report
        raise error


def _no_valid_reason(result: TaskResult) -> str:
    if result.first_error:
        return result.first_error
    return "every candidate was rejected before measurement (see MetaSchedule's postprocessors)"
