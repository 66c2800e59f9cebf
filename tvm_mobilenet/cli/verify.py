"""Command line: run every generated OpenCL convolution kernel on an OpenCL device here (PoCL) and
compare each layer with the float64 reference; exit 2 if one disagrees.

    python -m tvm_mobilenet.verify --target mali [--device rk3399-mali] [--alpha 0.25 --resolution
    64]
    python -m tvm_mobilenet.verify --target mali --log-dir tuning_logs/mali/rk3399-mali   # the
    tuned kernels
"""

from __future__ import annotations

from tvm_mobilenet.cli.common import (
    Parser,
    add_model_args,
    add_target_args,
    device_and_log_dir,
    model_source,
)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.compile.opencl_check import TOLERANCE

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.verify", description=__doc__.splitlines()[0]
    )
    add_model_args(parser, weights=False, files=False)  # random inputs per layer: no weights
    add_target_args(parser)
    parser.add_argument(
        "--no-log", action="store_true", help="ignore tuning records (the untuned kernels)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=f"max abs error of one layer's output (default {TOLERANCE:g})",
    )
    args = parser.parse_args(argv)

    from tvm_mobilenet.compile.verify import VerifyArgs, verify_kernels

    model = model_source(args)
    device, log_dir, defaulted = device_and_log_dir(args, model)
    verify_kernels(
        VerifyArgs(
            model=model,
            device=device,
            log_dir=None if args.no_log else log_dir,
            log_optional=defaulted,
            tolerance=args.tolerance,
        )
    )
    return 0
