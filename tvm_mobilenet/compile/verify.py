"""Python entry point of kernel verification: every generated OpenCL convolution kernel of the
model, launched on an OpenCL device here and compared layer by layer with the float64 reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.compile.api import open_records
from tvm_mobilenet.compile.opencl_check import (
    LAYER_TOLERANCE,
    LayerCheck,
    OpenclDevice,
    check_tasks,
)
from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.model.source import ModelSource
from tvm_mobilenet.tasks.extract import extract_tasks

HEADER = f"{'kind':<10} {'shape':<28} {'global':>9} {'local':>6} {'private':>7} {'max abs err':>12}"


@dataclass
class VerifyArgs:
    model: ModelSource
    device: DeviceSpec
    log_dir: Path | None
    log_optional: bool = (
        False  # True for the default log directory: the untuned schedules if absent
    )
    tolerance: float = LAYER_TOLERANCE


def format_row(check: LayerCheck) -> str:
    size = lambda dims: "x".join(map(str, dims))  # noqa: E731
    return (
        f"{check.task.kind:<10} {check.task.shape:<28} {size(check.launch.global_size):>9} "
        f"{size(check.launch.local_size):>6} {check.launch.private_floats:>7} "
        f"{check.max_abs_error:>12.2e}"
    )


def verify_kernels(args: VerifyArgs, print_fn: Callable[[str], None] = print) -> list[LayerCheck]:
    """Check the kernels compile would build for `args.device`; VerificationError if any layer is
    off."""
    target = args.device.target
    if target.kind.name != "opencl":
        raise TvmMobilenetError(
            f"{args.device.label} is a '{target.kind.name}' target; verify checks OpenCL "
            "kernels: use --target mali (compile verifies CPU modules itself)"
        )
    opencl = OpenclDevice()
    log = open_records(args.log_dir, args.log_optional, args.device, args.model, print_fn)
    print_fn(
        f"checking the OpenCL kernels of {args.model.describe()} for {args.device.label} "
        f"({'best records of ' + str(args.log_dir) if log else 'untuned schedules'}) on "
        f"{opencl.name}"
    )
    print_fn(HEADER)
    checks = check_tasks(
        extract_tasks(args.model.module(), target),
        args.device,
        log,
        opencl,
        on_layer=lambda check: print_fn(format_row(check)),
        tolerance=args.tolerance,
    )
    print_fn(
        f"all {len(checks)} kernels match the float64 reference (tolerance {args.tolerance:g})"
    )
    return checks
