"""Command line: run every generated OpenCL convolution kernel on an OpenCL device here (PoCL) and
compare each layer with the float64 reference; exit 2 if one disagrees.

    tvm-mobilenet verify --target mali [--device rk3399-mali] [--alpha 0.25 --resolution 64]
    tvm-mobilenet verify --target mali --log-dir tuning_logs/mali/rk3399-mali  # tuned kernels
"""

from __future__ import annotations

from tvm_mobilenet.cli.common import (
    Parser,
    add_device_build_args,
    model_device_and_log_dir,
)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.compile.opencl_check import LAYER_TOLERANCE

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.verify", description=__doc__.splitlines()[0]
    )
    # random inputs per layer: no weights, no model file, and no farm (it runs here, on OpenCL)
    add_device_build_args(parser, weights=False, files=False, rpc=False)
    parser.add_argument(
        "--no-log", action="store_true", help="ignore tuning records (the untuned kernels)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=LAYER_TOLERANCE,
        help=f"max abs error of one layer's output (default {LAYER_TOLERANCE:g})",
    )
    args = parser.parse_args(argv)

    from tvm_mobilenet.compile.verify import VerifyArgs, verify_kernels

    model, device, log_dir, defaulted = model_device_and_log_dir(args, reading=True)
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
