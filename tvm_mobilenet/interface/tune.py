"""Python entry point of tuning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TvmMobilenetError
from ..search import default_schedule, space_generator
from ..targets import DeviceSpec
from ..tasks import extract_tasks
from ..tuner import TuneReport, allocate_trials, tune_tasks
from ..tuning_log import open_log
from .model import ModelSource

DEFAULT_TRIALS = 460  # 20 per task of MobileNet v1 (23 tasks); about 25 minutes on 2 cores


@dataclass
class TuneArgs:
    model: ModelSource
    device: DeviceSpec
    log_dir: Path
    trials: int = DEFAULT_TRIALS
    ops: str = "all"
    search: str = "both"
    seed: int = 0

    def display(self) -> str:
        return (f"tuning {self.model.describe()} "
                f"for {self.device.label} ({self.device.target_config}), ops={self.ops}, "
                f"search={self.search}, {self.trials} trials, log {self.log_dir}")


def tune(args: TuneArgs, print_fn: Callable[[str], None] = print) -> TuneReport:
    """Tune the model's tasks for the device; records go to (and resume from) `args.log_dir`."""
    if args.trials < 0:
        raise TvmMobilenetError(f"--trials {args.trials} must be >= 0")
    if args.device.measure != "local":
        raise TvmMobilenetError(
            f"target '{args.device.family}' is measured on remote devices over TVM RPC: pass "
            "--rpc-tracker HOST:PORT --rpc-key KEY (start a tracker with `python -m tvm.exec.rpc_tracker`)"
        )
    # Step 1. The model and its tasks (weights do not change the tasks).
    mod = args.model.module()  # a model file is imported here: its errors come before any output
    print_fn(args.display())
    target = args.device.target
    tasks = extract_tasks(mod, target, args.ops)
    # Step 2. The log: checked, torn lines set aside, created if new.
    log = open_log(args.log_dir, args.device.label, args.device.target_config, args.model.key, create=True)
    # Step 3. Tune each task up to its share of the trials.
    trials = allocate_trials(tasks, args.trials)
    family = args.device.schedule_family
    start_from = None if args.search == "auto" else lambda task: default_schedule(task, family, target)
    return tune_tasks(tasks, trials, log, target,
                      lambda task: space_generator(task, args.search, family, target),
                      seed=args.seed, print_fn=print_fn, start_from=start_from)
