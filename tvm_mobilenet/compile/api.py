"""Python entry point of compilation: apply the best records, build, export, verify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_mobilenet.compile.build import (
    CompileReport,
    build,
    check_against_reference,
    check_int8_against_source,
    export,
    load_module_file,
    publish,
    untuned_tasks,
    with_input_signature,
)
from tvm_mobilenet.compile.cross import cross_compiler, export_function
from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import SourceCheckUnavailable
from tvm_mobilenet.files import check_output
from tvm_mobilenet.model.reference import SOFTMAX_TOLERANCE, as_probabilities
from tvm_mobilenet.model.source import ModelSource
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tasks.strassen import strassen_tasks
from tvm_mobilenet.tune.log import TuningLog, open_log
from tvm_mobilenet.tune.measure import RpcSettings


@dataclass
class CompileArgs:
    model: ModelSource
    device: DeviceSpec
    output: Path
    log_dir: Path | None
    log_optional: bool = False  # True for the default log directory: compile untuned if absent
    tolerance: float = SOFTMAX_TOLERANCE
    stock: bool = False  # no templates either: what stock TVM builds untuned (the baseline)
    rpc: RpcSettings | None = None  # a device to verify a cross-compiled module on
    ndk_cc: str | None = None
    strassen: bool = True  # wide 1x1 layers as Strassen kernels (tasks/strassen.py)

    def display(self) -> str:
        return (
            f"compiling {self.model.describe()} "
            f"for {self.device.label} "
            + (f"with records from {self.log_dir}" if self.log_dir else "without a tuning log")
            + f" -> {self.output}"
        )


def open_records(
    log_dir: Path | None, log_optional: bool, device: DeviceSpec, model: ModelSource, print_fn
) -> TuningLog | None:
    """The log whose best records the build applies; None without one (an optional, absent
    default)."""
    if log_dir is None:
        return None
    if log_optional and not Path(log_dir).exists():
        print_fn(f"note: no tuning log in {log_dir}; using the untuned schedules")
        return None
    return open_log(log_dir, device.label, device.target_config, model.key, create=False)


def _runner(args: CompileArgs, compiler: str | None, path: Path) -> tuple | None:
    """(`run(input) -> output` of the exported file, where it runs): here for the host target, on
    a device over RPC for a cross-compiled one, None without a device."""
    if compiler is None:
        return load_module_file(path), "this machine"
    if args.rpc is None:
        return None
    from tvm_mobilenet.run.remote import RemoteModel

    model = RemoteModel(path, args.rpc)
    return (lambda data: model.run(data).output), model.label


def compile_model(args: CompileArgs, print_fn: Callable[[str], None] = print) -> CompileReport:
    """Build the tuned model into `args.output` and check it against the model's trusted output.

    The trusted output is the float64 reference (built-in MobileNet) or the file's own framework.
    The file appears under its name only after the check passed, or, when that framework is not
    installed here, after saying plainly that it was not checked. A cross-compiled module is checked
    on a device of `args.rpc`; without one it is written unverified, with a warning.
    """
    check_output(args.output, "-o", args.model.input_files())  # before the build, not after
    compiler = cross_compiler(args.device, args.ndk_cc)
    # Step 1. The model, and the records that apply to it.
    mod = args.model.module()  # a model file is imported here: its errors come before any output
    print_fn(args.display())
    target = args.device.target
    log = open_records(args.log_dir, args.log_optional, args.device, args.model, print_fn)
    report = CompileReport(str(args.output))
    tasks = extract_tasks(mod, target)
    family = None if args.stock else args.device.schedule_family
    strassen = strassen_tasks(tasks, target, family) if args.strassen else []
    if strassen:
        layers = sum(task.weight for task in strassen)
        print_fn(f"strassen: {layers} layers ({len(strassen)} functions) run as Strassen kernels")
    report.untuned = untuned_tasks([t for t in tasks if t not in strassen], log)
    if log is None:  # said once, not per function: none has a record
        print_fn(f"untuned: {len(report.untuned)} functions get their heuristic schedules")
    else:
        for task in report.untuned:
            print_fn(f"warning: no tuning record for {task.name} ({task.kind} {task.shape})")
    # Step 2. Build and export under a temporary name.
    executable = build(
        with_input_signature(mod, args.model.input_shape),
        target,
        log,
        family,
        strassen=args.strassen,
    )
    staging = export(executable, Path(args.output), export_function(compiler))
    # Step 3. Load the exported file back (here or on a device), run the fixed input, compare.
    try:
        _verify(args, compiler, staging, report, print_fn)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    publish(staging, Path(args.output))
    if report.verified_on is None:
        print_fn(
            f"warning: {args.output} is NOT verified: "
            + (
                f"it is cross-compiled for {args.device.label}; pass --rpc-tracker HOST:PORT "
                f"--rpc-key KEY to "
                "check it on a device before shipping it"
                if compiler
                else "see above"
            )
        )
    print_fn(f"wrote {args.output}")
    return report


# Calls of the check on this machine, each compared: a race between threads need not show on the
# first (found: per-core pixel parts with a padded tile, wrong on some calls of MobileNet 0.25/128
# at 2 threads). A device over RPC, often emulated, runs it once.
LOCAL_CHECK_CALLS = 3


def _compare(output, expected, tolerance: float) -> tuple[float, str]:
    """(max error, description) of `output` against the trusted one; VerificationError if off.

    An int8 model file's int8 output is compared in quantization steps, the rest as softmax."""
    if np.issubdtype(expected.output.dtype, np.integer):
        agreement = check_int8_against_source(output, expected.output, expected.against)
        return float(agreement.max_steps), agreement.describe()
    error = check_against_reference(
        as_probabilities(output), as_probabilities(expected.output), tolerance, expected.against
    )
    return error, f"max abs error {error:.2e} on the softmax (tolerance {tolerance:g})"


def _verify(
    args: CompileArgs, compiler: str | None, staging: Path, report: CompileReport, print_fn
) -> None:
    """Compare the exported module's softmax with the trusted one; say so plainly if there is
    none."""
    runner = _runner(args, compiler, staging)
    if runner is None:
        return
    run, where = runner
    data = args.model.sample_input()
    outputs = [run(data) for _ in range(LOCAL_CHECK_CALLS if compiler is None else 1)]
    try:
        expected = args.model.expected(data)
    except SourceCheckUnavailable as err:
        print_fn(f"warning: NOT CHECKED against the source framework: {err}")
        return
    compared = [_compare(output, expected, args.tolerance) for output in outputs]
    report.max_abs_error, detail = max(compared, key=lambda result: result[0])
    report.verified_on = where
    report.checked_against = expected.against
    print_fn(f"verified against {expected.against} on {where}: {detail}")
    for line in args.model.extra_checks(run):
        print_fn(line)
