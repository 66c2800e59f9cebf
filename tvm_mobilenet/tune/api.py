"""Python entry point of tuning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.compile.cross import cross_compiler
from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import FarmUnavailableError, TvmMobilenetError
from tvm_mobilenet.farm.tracker import START_TRACKER_HINT, require_devices
from tvm_mobilenet.model.source import ModelSource
from tvm_mobilenet.tasks.extract import Task, extract_tasks
from tvm_mobilenet.tasks.strassen import strassen_tasks
from tvm_mobilenet.tune.catalogue import LogEntry, count_records, find_logs
from tvm_mobilenet.tune.in_model import check_in_model, discard_verdicts
from tvm_mobilenet.tune.log import TuningLog, open_log
from tvm_mobilenet.tune.measure import (
    FarmWatch,
    RpcSettings,
    cross_export,
    make_builder,
    make_runner,
    require_device_runtime,
)
from tvm_mobilenet.tune.spaces import search_on
from tvm_mobilenet.tune.tuner import TuneReport, split_budget, tune_tasks
from tvm_mobilenet.tune.warm_start import (
    WarmStart,
    check_warm_start_dir,
    choose_warm_start,
    load_warm_start,
)

DEFAULT_TRIALS = 460  # 20 per task of MobileNet v1 (23 tasks): half equally, half by gain


@dataclass
class TuneArgs:
    model: ModelSource
    device: DeviceSpec
    log_dir: Path
    trials: int = DEFAULT_TRIALS
    ops: str = "all"
    search: str = "both"
    seed: int = 0
    rpc: RpcSettings | None = None  # required by targets measured over RPC
    ndk_cc: str | None = None
    # "auto": the nearest log of the same target family, when this log has no valid record yet;
    # a log directory: that log; None: no warm start
    warm_start: str | Path | None = None
    # After the search, on a device measured here: time each tuned kernel against its untuned
    # schedule inside the whole model (tune/in_model.py); compile uses the faster.
    in_model_check: bool = True
    # Leave out the layers a build runs as Strassen kernels (tasks/strassen.py): no record of
    # theirs would be used.
    strassen: bool = True

    def display(self) -> str:
        return (
            f"tuning {self.model.describe()} "
            f"for {self.device.label} ({self.device.target_config}), ops={self.ops}, "
            f"search={self.search}, {self.trials} trials, log {self.log_dir}"
            + (f", measured on devices '{self.rpc.key}' at {self.rpc.tracker}" if self.rpc else "")
        )


def list_logs() -> list[LogEntry]:
    """The catalogue: every log shipped with the package or tuned under ./tuning_logs."""
    return find_logs()


def check_remote(args: TuneArgs) -> str | None:
    """For a device measured over RPC: a farm with devices under the key and, for a CPU, the cross
    compiler (returned). Quick, so that these errors come before anything slow or written."""
    if args.rpc is None:
        raise FarmUnavailableError(
            f"target '{args.device.family}' is measured on remote devices: pass --rpc-tracker "
            f"HOST:PORT "
            f"--rpc-key KEY (or set TVM_TRACKER_HOST/TVM_TRACKER_PORT); no farm yet? "
            f"{START_TRACKER_HINT}"
        )
    compiler = cross_compiler(args.device, args.ndk_cc)
    require_devices(args.rpc.tracker, args.rpc.key)
    return compiler


def measurement(args: TuneArgs):
    """The builder and runner for the device: local, or cross-compiled and measured over RPC. The
    builder's workers start once the device is known to work, and overlap the runner's start."""
    local = args.device.measure == "local"
    if local:
        builder = make_builder()
    else:
        compiler = check_remote(args)
        device_kind = args.device.target.kind.name
        if device_kind != "llvm":  # a GPU target: the devices' runtime must have its API (OpenCL)
            require_device_runtime(args.rpc, device_kind)
        builder = make_builder(cross_export(compiler) if compiler else None)
    builder.start()
    try:
        return builder, make_runner(None if local else args.rpc)
    except BaseException:
        builder.close()
        raise


def _warm_start(
    args: TuneArgs, log: TuningLog, tasks, given: LogEntry | None, print_fn
) -> WarmStart | None:
    """The warm start to measure first: the given log's, or with "auto" on a log without valid
    records the nearest log's (None, said in a line, when no log shares a task)."""
    if args.trials == 0:  # nothing will be measured
        return None
    if given is not None:
        warm = load_warm_start(given, tasks)
    elif args.warm_start == "auto" and count_records(log.path)[1] == 0:
        device = args.device
        warm = choose_warm_start(
            device.family, device.target_config, args.model.key, tasks, log.path
        )
    else:
        return None
    if warm is None or not warm.schedules:
        source = given.path if given is not None else f"no '{args.device.family}' log"
        print_fn(f"warm start: {source} shares no task with this model; tuning from scratch")
        return None
    print_fn(warm.describe(len(tasks)))
    return warm


def tune(args: TuneArgs, print_fn: Callable[[str], None] = print) -> TuneReport:
    """Tune the model's tasks for the device; records go to (and resume from) `args.log_dir`.
    With a warm start, another log's best schedules are measured here first (see
    tvm_mobilenet/tune/warm_start.py)."""
    if args.trials < 0:
        raise TvmMobilenetError(f"--trials {args.trials} must be >= 0")
    given = None
    if args.warm_start not in (None, "auto"):
        given = check_warm_start_dir(Path(args.warm_start), args.device.family)
    if args.device.measure != "local":
        check_remote(args)  # a farm's errors come before anything is written
    # Step 1. The model (a model file is imported here: its errors come before any output).
    mod = args.model.module()
    # Step 2. The log, before the slow start of the workers: locked (one tune per log),
    # checked, repaired, created if new.
    log = open_log(
        args.log_dir, args.device.label, args.device.target_config, args.model.key, create=True
    )
    try:
        return _tune_into(log, args, mod, given, print_fn)
    finally:
        log.close()  # the lock goes now, not when the log is garbage-collected


def _tune_into(log: TuningLog, args: TuneArgs, mod, given: LogEntry | None, print_fn):
    """Steps 3 to 6 of `tune`, with the log open."""
    if args.trials > 0:
        discard_verdicts(log.path)  # the check below measures the new records again
    report, tasks = _search(log, args, mod, given, print_fn)
    # Step 6. The tuned kernels against their untuned schedules in the model (CPU targets
    # measured here; the builder's workers have stopped).
    local_cpu = args.device.measure == "local" and args.device.target.kind.name == "llvm"
    if args.in_model_check and local_cpu and any(r.best_seconds for r in report.results):
        check_in_model(  # its verdicts go to the log directory, where compile reads them
            mod,
            tasks,
            log,
            args.device.target,
            args.device.schedule_family,
            args.model.input_shape,
            print_fn,
            strassen=args.strassen,
        )
    return report


def _without_strassen(tasks: list[Task], target, schedule_family: str, print_fn) -> list[Task]:
    strassen = strassen_tasks(tasks, target, schedule_family)
    if strassen:
        print_fn(
            f"not tuned: {len(strassen)} functions that compile runs as Strassen kernels "
            "(tune --no-strassen tunes them)"
        )
    return [task for task in tasks if task not in strassen]


def _search(log: TuningLog, args: TuneArgs, mod, given: LogEntry | None, print_fn):
    """Steps 3 to 5: (report, tasks)."""
    # Step 3. The builder and runner, and the tasks (weights do not change them).
    builder, runner = measurement(args)
    try:
        print_fn(args.display())
        target = args.device.target
        tasks = extract_tasks(mod, target, args.ops)
        if args.strassen:
            tasks = _without_strassen(tasks, target, args.device.schedule_family, print_fn)
        # Step 4. The warm start's schedules, replayed on this model's tasks (measured in step 5).
        warm = _warm_start(args, log, tasks, given, print_fn)
        # Step 5. Tune each task up to its first share of the trials, then spend the rest by gain.
        trials, by_gain = split_budget(tasks, args.trials)
        space_for, start_from = search_on(args.device, args.search)
        report = tune_tasks(
            tasks,
            trials,
            log,
            target,
            space_for,
            builder=builder,
            runner=runner,
            seed=args.seed,
            print_fn=print_fn,
            start_from=start_from,
            callbacks=[FarmWatch(args.rpc)] if args.rpc is not None else [],
            warm_from=warm.for_task if warm is not None else None,
            by_gain=by_gain,
        )
    finally:
        builder.close()  # also when the warm start or the tasks fail (idempotent)
    return report, tasks
