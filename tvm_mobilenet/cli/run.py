"""Command line: run an exported MobileNet .so with only the TVM runtime; print top-5 and latency.

    tvm-mobilenet run build/mobilenet_x86.so [--input x.npy] [--output y.npy] [--repeat N] [--json]
                      [--model FILE]   # also run the source model file in its framework, compare
    tvm-mobilenet run build/m_rasp4b.so --rpc-tracker 127.0.0.1:9190 --rpc-key rasp4b

Threads follow TVM_NUM_THREADS; unset, all the cores this process may use (TVM alone would take
half). Loading a .so runs its code, as running a program does: run only modules you built or trust.
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.cli.common import Parser, add_rpc_args, add_trust_flag


def main(argv=None, prog=None) -> int:
    parser = Parser(prog=prog or "python -m tvm_mobilenet.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "module",
        type=Path,
        help="the .so written by tvm_mobilenet.compile (loading it runs its code: only one you "
        "built or trust)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        help="a float32 .npy of the module's input shape (default: the fixed test input)",
    )
    parser.add_argument("--output", type=Path, help="save the output probabilities as .npy")
    parser.add_argument(
        "--repeat", type=int, default=10, help="timed runs after one warm-up (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="the .onnx/.tflite/.pt2 the module was compiled from: run it in its own framework on "
        "the same input and report the max abs error on the softmax",
    )
    add_trust_flag(parser)
    add_rpc_args(parser, ndk=False)
    args = parser.parse_args(argv)

    from tvm_mobilenet.cli.common import rpc_settings
    from tvm_mobilenet.run.api import run_module

    report = run_module(
        args.module,
        input_file=args.input,
        repeat=args.repeat,
        output_file=args.output,
        model_file=args.model,
        rpc=rpc_settings(args) if args.rpc_tracker is not None else None,
        trust_model_file=args.trust_model_file,
    )
    result, comparison = report.result, report.source
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(
            f"{args.module}: input {'x'.join(map(str, report.input_shape))}, "
            f"median {result.median_ms:.2f} ms over {len(result.latencies_ms)} runs "
            f"on {report.ran_on}"
        )
        quantized = result.output.dtype.kind in "iu"  # an int8 model's quantized softmax
        for rank, (cls, score) in enumerate(result.top5(), start=1):
            print(
                f"  top{rank}: class {cls:4d}  "
                + (f"q={score:.0f}" if quantized else f"p={score:.4f}")
            )
        if comparison:
            print(
                f"{args.model.name} in {comparison['framework']}: max abs error "
                f"{comparison['max_abs_error']:.2e} on the softmax"
            )
    return 0
