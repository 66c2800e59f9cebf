"""Compile a model with its best tuning records into a deployable .so, and check it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.relax.transform import MetaScheduleApplyDatabase

from tvm_mobilenet.compile.default_schedules import default_schedules
from tvm_mobilenet.errors import TvmMobilenetError, VerificationError
from tvm_mobilenet.files import write_failed
from tvm_mobilenet.run.runtime import (  # the .so reports its input: `run` needs no side file
    INPUT_DTYPE_FUNC,
    INPUT_SHAPE_FUNC,
)
from tvm_mobilenet.schedules import intrin
from tvm_mobilenet.tasks.extract import Task, fuse
from tvm_mobilenet.tasks.strassen import use_strassen
from tvm_mobilenet.tune.in_model import function_hashes, untuned_functions
from tvm_mobilenet.tune.log import TuningLog


@dataclass
class CompileReport:
    output: str
    untuned: list[Task] = field(default_factory=list)
    max_abs_error: float | None = None
    verified_on: str | None = None
    checked_against: str | None = None  # None: not checked (the source framework is not installed)


def with_input_signature(mod: tvm.IRModule, shape) -> tvm.IRModule:
    """Add functions that return the model's input shape and dtype, for runtime-only loaders."""
    bb = relax.BlockBuilder(mod)
    with bb.function(INPUT_SHAPE_FUNC, []):
        bb.emit_func_output(relax.ShapeExpr([int(d) for d in shape]))
    with bb.function(INPUT_DTYPE_FUNC, []):
        bb.emit_func_output(tvm.ir.StringImm(str(mod["main"].params[0].ty.dtype)))
    return bb.get()


def untuned_tasks(tasks: list[Task], log: TuningLog | None) -> list[Task]:
    if log is None:
        return list(tasks)
    return [task for task in tasks if log.best_seconds(task.mod) is None]


def lowering_passes(target: tvm.target.Target) -> list:
    """Relax's lowering and finalization passes for the target."""
    try:
        return relax.pipeline.dataflow_lower_passes(target) + relax.pipeline.finalize_passes(target)
    except AttributeError:  # TVM 0.27's CPU backend does not re-export dataflow_lower_passes
        from tvm.relax.backend.cpu_generic import pipeline as cpu

        return cpu.dataflow_lower_passes(target) + cpu.finalize_passes(target)


def build(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    log: TuningLog | None,
    schedule_family: str | None,
    strassen: bool = True,
) -> relax.VMExecutable:
    """Fuse as task extraction does, run the wide 1x1 layers as Strassen kernels where the family
    does (`strassen`; tasks/strassen.py), apply the log's best records, schedule what no record
    covers with the templates' defaults (none if `schedule_family` is None: stock TVM's naive
    code, the baseline), then lower and build."""

    @tvm.transform.module_pass(opt_level=3)
    def pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        mod = fuse(mod, target, pack_weights=schedule_family is not None)
        if strassen:
            mod = use_strassen(mod, target, schedule_family)
        if log is not None:
            mod = _apply_records(mod, log, schedule_family)
        if schedule_family is not None:
            mod = default_schedules(schedule_family, target)(mod)
        return tvm.transform.Sequential(lowering_passes(target))(mod)

    intrin.register()  # a record's trace replays tensorize with our int8 intrinsics
    database = log.database if log is not None else None
    with target, tvm.transform.PassContext(opt_level=3):
        if database is None:
            return relax.build(mod, target=target, relax_pipeline=pipeline)
        with database:
            return relax.build(mod, target=target, relax_pipeline=pipeline)


def _apply_records(mod: tvm.IRModule, log: TuningLog, schedule_family: str | None) -> tvm.IRModule:
    """The log's best records, except for the functions its in-model check found faster with
    their untuned schedule (tune/in_model.py): those stay unscheduled for the templates."""
    keep = untuned_functions(log.path) if schedule_family is not None else set()
    hashes = function_hashes(mod) if keep else {}
    unscheduled = {gv: mod[gv] for gv in mod.functions if hashes.get(gv.name_hint) in keep}
    mod = MetaScheduleApplyDatabase()(mod)
    for gv, func in unscheduled.items():
        mod.update_func(gv, func)
    return mod


def export(executable: relax.VMExecutable, output: Path, fcompile=None) -> Path:
    """Export to a temporary name beside `output`; the caller renames it once it is verified."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_failed(output, "-o", err) from None
    staging = output.with_name(f".{output.name}.unverified.so")
    try:
        if fcompile is None:
            executable.export_library(str(staging))
        else:
            executable.export_library(str(staging), fcompile=fcompile)
    except Exception as err:  # the system compiler's message is the useful part
        staging.unlink(missing_ok=True)
        raise TvmMobilenetError(
            f"exporting {output} failed: {str(err).strip().splitlines()[-1]}"
        ) from None
    return staging


def load_module_file(path: Path):
    """Load an exported .so in this process; returns `run(input) -> output` on the CPU, on every
    core as `run` and apps take it (TVM alone would take half of them: on 2 cores, one thread,
    where no race between the threads of a kernel can show)."""
    from tvm_mobilenet.run.threads import use_all_cores

    use_all_cores()  # before the module's first call starts TVM's pool
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu())
    return lambda data: vm["main"](tvm.runtime.tensor(data, tvm.cpu())).numpy()


def check_against_reference(
    output: np.ndarray,
    expected: np.ndarray,
    tolerance: float,
    against: str = "the float64 reference",
) -> float:
    """Max abs error; raises VerificationError if it exceeds `tolerance`."""
    if output.shape != expected.shape:
        raise VerificationError(
            f"compiled module's output has shape {output.shape}, {against} gives "
            f"{expected.shape}; the module was not written"
        )
    error = float(np.max(np.abs(output.astype(np.float64) - expected)))
    if not np.isfinite(error) or error > tolerance:
        raise VerificationError(
            f"compiled module disagrees with {against}: max abs error {error:.3g} > "
            f"{tolerance:g}; the module was not written (report this with the tuning log)"
        )
    return error


# An int8 output is checked in quantization steps: within one step on at least this fraction of
# elements and the same top-1 class. (With the arithmetic paired to its interpreter, the model files
# tested here agree exactly; a step apart is what rounding one accumulator differently gives.)
INT8_WITHIN_ONE_STEP = 0.99


@dataclass(frozen=True)
class Int8Agreement:
    exact: float  # fraction of equal elements
    within_one_step: float
    max_steps: int
    top1_equal: bool

    def describe(self) -> str:
        return (
            f"{100 * self.exact:.2f}% of outputs equal, {100 * self.within_one_step:.2f}% within "
            f"one quantization step (max {self.max_steps}), top-1 "
            + ("equal" if self.top1_equal else "DIFFERENT")
        )


def _same_top1(output: np.ndarray, expected: np.ndarray) -> bool:
    """Per row, the classes at the maximum share one. An int8 output can tie classes at its
    maximum, and then each is a top-1 (argmax would pick the first: a one-step difference on one
    of them, found against ONNX Runtime's int8 kernels, flipped it)."""
    rows = zip(output.reshape(len(output), -1), expected.reshape(len(expected), -1), strict=True)
    return all(np.any((got == got.max()) & (want == want.max())) for got, want in rows)


def int8_agreement(output: np.ndarray, expected: np.ndarray) -> Int8Agreement:
    steps = np.abs(output.astype(np.int64) - expected.astype(np.int64)).reshape(len(output), -1)
    top1 = _same_top1(output, expected)
    return Int8Agreement(
        float(np.mean(steps == 0)), float(np.mean(steps <= 1)), int(steps.max()), bool(top1)
    )


def check_int8_against_source(
    output: np.ndarray, expected: np.ndarray, against: str
) -> Int8Agreement:
    """The int8 check; raises VerificationError below INT8_WITHIN_ONE_STEP or on another top-1."""
    if output.shape != expected.shape:
        raise VerificationError(
            f"compiled module's output has shape {output.shape}, {against} gives "
            f"{expected.shape}; the module was not written"
        )
    agreement = int8_agreement(output, expected)
    if agreement.within_one_step < INT8_WITHIN_ONE_STEP or not agreement.top1_equal:
        raise VerificationError(
            f"compiled module disagrees with {against}: {agreement.describe()}; the module was "
            "not written (report this with the model file)"
        )
    return agreement


def publish(staging: Path, output: Path) -> None:
    """Give the verified file its name (the staging file never stays behind)."""
    try:
        os.replace(staging, output)
    except OSError as err:
        staging.unlink(missing_ok=True)
        raise write_failed(output, "-o", err) from None
