"""Command line: compile MobileNet v1 (or a model file) with its best tuning records into a .so,
verified against the reference.

    tvm-mobilenet compile --target x86 -o build/mobilenet_x86.so
    tvm-mobilenet compile --model mobilenet.tflite -o build/mobilenet_tflite.so
    tvm-mobilenet compile --target arm --device rasp4b -o build/m.so \\
                          --rpc-tracker 127.0.0.1:9190
"""

from __future__ import annotations

from pathlib import Path

from tvm_mobilenet.cli.common import (
    Parser,
    add_device_build_args,
    add_strassen_arg,
    model_device_and_log_dir,
    rpc_settings,
)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.model.reference import SOFTMAX_TOLERANCE

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.compile", description=__doc__.splitlines()[0]
    )
    add_device_build_args(parser)
    add_strassen_arg(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .so to write")
    parser.add_argument(
        "--no-log", action="store_true", help="ignore tuning records (an untuned build)"
    )
    parser.add_argument(
        "--stock",
        action="store_true",
        help="with --no-log: no templates either, the naive code stock TVM builds (a baseline)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=SOFTMAX_TOLERANCE,
        help="max abs error on the softmax against the reference or the model file's framework "
        f"(default {SOFTMAX_TOLERANCE:g})",
    )
    args = parser.parse_args(argv)

    from tvm_mobilenet.compile.api import CompileArgs, compile_model

    model, device, log_dir, defaulted = model_device_and_log_dir(args, reading=True)
    compile_model(
        CompileArgs(
            model=model,
            device=device,
            output=args.output,
            log_dir=None if args.no_log else log_dir,
            log_optional=defaulted,
            tolerance=args.tolerance,
            rpc=rpc_settings(args, device),
            ndk_cc=args.ndk_cc,
            stock=args.stock,
            strassen=not args.no_strassen,
        )
    )
    return 0
