"""Python entry point of the search-style comparison: template vs auto at equal budgets."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks.extract import Task, extract_tasks
from tvm_mobilenet.tune.log import RECORD_FILE, open_log
from tvm_mobilenet.tune.progress import mean_seconds
from tvm_mobilenet.tune.spaces import search_on
from tvm_mobilenet.tune.tuner import tune_tasks

STYLES = ("template", "auto")


@dataclass
class Curve:
    """Best latency after each trial of one task under one search style."""

    task: Task
    style: str
    best_seconds: list[float | None] = field(default_factory=list)

    def best_at(self, trials: int) -> float | None:
        values = self.best_seconds[:trials]
        return values[-1] if values else None


def best_so_far(record_file: Path) -> list[float | None]:
    """The running minimum over the log's records, in the order they were measured."""
    best, curve = None, []
    for line in record_file.read_text().splitlines():
        seconds = mean_seconds(json.loads(line)[1][1])
        if seconds is not None and (best is None or seconds < best):
            best = seconds
        curve.append(best)
    return curve


def select_tasks(config: ModelConfig, device: DeviceSpec, every: int) -> list[Task]:
    """Every `every`-th depthwise and pointwise task of the model (1: all of them)."""
    mod, _ = load_model(config)
    tasks = extract_tasks(mod, device.target)
    chosen = []
    for kind in ("depthwise", "pointwise"):
        chosen += [t for t in tasks if t.kind == kind][::every]
    return chosen


def compare_search(
    config: ModelConfig,
    device: DeviceSpec,
    trials: int,
    every: int = 1,
    print_fn: Callable[[str], None] = print,
) -> list[Curve]:
    """Tune each selected task from an empty log once per style with `trials` trials."""
    curves = []
    for task in select_tasks(config, device, every):
        for style in STYLES:
            with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_compare_") as scratch:
                log = open_log(scratch, device.label, device.target_config, config.key, create=True)
                space_for, start_from = search_on(device, style)
                tune_tasks(
                    [task],
                    [trials],
                    log,
                    device.target,
                    space_for,
                    start_from=start_from,
                    print_fn=lambda line, s=style: print_fn(f"{s:8s} {line}"),
                )
                curves.append(Curve(task, style, best_so_far(Path(scratch) / RECORD_FILE)))
    return curves
