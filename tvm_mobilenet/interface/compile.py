"""Python entry point of compilation: apply the best records, build, export, verify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import reference
from ..architecture import ModelConfig
from ..compiler import (CompileReport, build, check_against_reference, export, publish,
                        run_module_file, untuned_tasks, with_input_shape)
from ..cross_compile import cross_compiler, export_function
from ..measure import RpcSettings
from ..targets import DeviceSpec
from ..tasks import extract_tasks
from ..tuning_log import TuningLog, open_log
from .model import load_model

DEFAULT_TOLERANCE = 1e-4  # max abs error on the softmax output


@dataclass
class CompileArgs:
    config: ModelConfig
    device: DeviceSpec
    output: Path
    log_dir: Path | None
    log_optional: bool = False  # True for the default log directory: compile untuned if absent
    weights_file: Path | None = None
    seed: int = 0
    tolerance: float = DEFAULT_TOLERANCE
    rpc: RpcSettings | None = None  # a device to verify a cross-compiled module on
    ndk_cc: str | None = None

    def display(self) -> str:
        c = self.config
        return (f"compiling MobileNet v1 alpha={c.alpha} resolution={c.resolution} batch={c.batch} "
                f"for {self.device.label} with records from {self.log_dir} -> {self.output}")


def _open_records(args: CompileArgs, print_fn) -> TuningLog | None:
    if args.log_dir is None:
        return None
    if args.log_optional and not Path(args.log_dir).exists():
        print_fn(f"note: no tuning log in {args.log_dir}; compiling untuned")
        return None
    return open_log(args.log_dir, args.device.label, args.device.target_config, args.config.key, create=False)


def _run_where_it_runs(args: CompileArgs, compiler: str | None, path: Path, data) -> tuple:
    """Run the exported file here (host target) or on a device over RPC; (output, where) or None."""
    if compiler is None:
        return run_module_file(path, data), "this machine"
    if args.rpc is None:
        return None
    from ..remote import RemoteModel  # pylint: disable=import-outside-toplevel

    model = RemoteModel(path, args.rpc)
    return model.run(data).output, model.label


def compile_model(args: CompileArgs, print_fn: Callable[[str], None] = print) -> CompileReport:
    """Build the tuned model into `args.output` and check it against the float64 reference.

    The file appears under its name only after the check passed. A cross-compiled module is checked
    on a device of `args.rpc`; without one it is written unverified, with a warning.
    """
    compiler = cross_compiler(args.device, args.ndk_cc)
    print_fn(args.display())
    # Step 1. The model, and the records that apply to it.
    mod, weights = load_model(args.config, args.weights_file, args.seed)
    target = args.device.target
    log = _open_records(args, print_fn)
    report = CompileReport(str(args.output))
    report.untuned = untuned_tasks(extract_tasks(mod, target), log)
    for task in report.untuned:
        print_fn(f"warning: no tuning record for {task.name} ({task.kind} {task.shape})")
    # Step 2. Build and export under a temporary name.
    executable = build(with_input_shape(mod, args.config.input_shape), target, log)
    staging = export(executable, Path(args.output), export_function(compiler))
    # Step 3. Load the exported file back (here or on a device), run the fixed input, compare.
    try:
        data = reference.sample_input(args.config)
        ran = _run_where_it_runs(args, compiler, staging, data)
        if ran is not None:
            report.max_abs_error = check_against_reference(
                ran[0], reference.forward(args.config, weights, data), args.tolerance)
            report.verified_on = ran[1]
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    publish(staging, Path(args.output))
    if report.verified_on is None:
        print_fn(f"warning: {args.output} is cross-compiled for {args.device.label} and NOT verified: pass "
                 "--rpc-tracker HOST:PORT --rpc-key KEY to check it on a device before shipping it")
    else:
        print_fn(f"verified on {report.verified_on} against the float64 reference: max abs error "
                 f"{report.max_abs_error:.2e} (tolerance {args.tolerance:g})")
    print_fn(f"wrote {args.output}")
    return report
