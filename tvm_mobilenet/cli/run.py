"""Command line: run an exported MobileNet .so with only the TVM runtime; print top-5 and latency.

    tvm-mobilenet run build/mobilenet_x86.so [--input x.npy] [--output y.npy] [--repeat N] [--json]
                      [--model FILE]   # also run the source model file in its framework, compare
    tvm-mobilenet run build/m_rasp4b.so --rpc-tracker 127.0.0.1:9190 --rpc-key rasp4b

Threads follow TVM_NUM_THREADS; unset, all the cores this process may use (TVM alone would take
half).
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.cli.common import Parser, add_rpc_args
from tvm_mobilenet.run.runtime import use_runtime_only
from tvm_mobilenet.run.threads import use_all_cores


def load_model_file(args):
    """The module loaded here with the runtime only, or on a remote device with --rpc-tracker."""
    if args.rpc_tracker is None:
        use_runtime_only()
        from tvm_mobilenet.run.runtime import LoadedModel

        model = LoadedModel(args.module)
        return model, model.input_shape, "this machine"
    from tvm_mobilenet.cli.common import rpc_settings
    from tvm_mobilenet.farm.tracker import emulated_keys
    from tvm_mobilenet.run.remote import RemoteModel

    rpc = rpc_settings(args)
    model = RemoteModel(args.module, rpc)
    where = model.label + (
        " (emulated: the latency is not performance)" if rpc.key in emulated_keys() else ""
    )
    return model, model.input_shape(), where


def main(argv=None, prog=None) -> int:
    parser = Parser(prog=prog or "python -m tvm_mobilenet.run", description=__doc__.splitlines()[0])
    parser.add_argument("module", type=Path, help="the .so written by tvm_mobilenet.compile")
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
    add_rpc_args(parser, ndk=False)
    args = parser.parse_args(argv)

    use_all_cores()
    model, input_shape, where = load_model_file(args)
    from tvm_mobilenet.model.reference import random_input
    from tvm_mobilenet.run.runtime import load_input

    data = load_input(args.input) if args.input is not None else random_input(input_shape)
    result = model.run(data, repeat=args.repeat)
    if args.output is not None:
        result.save(args.output)
    comparison = (
        compare_with_source(args.model, data, result.output) if args.model is not None else None
    )
    if args.json:
        print(
            json.dumps(
                {
                    "module": str(args.module),
                    "input_shape": list(input_shape),
                    "ran_on": where,
                    "median_ms": result.median_ms,
                    "latencies_ms": result.latencies_ms,
                    "top5": [[c, p] for c, p in result.top5()],
                    **({"source": comparison} if comparison else {}),
                }
            )
        )
    else:
        print(
            f"{args.module}: input {'x'.join(map(str, input_shape))}, "
            f"median {result.median_ms:.2f} ms over {len(result.latencies_ms)} runs on {where}"
        )
        for rank, (cls, prob) in enumerate(result.top5(), start=1):
            print(f"  top{rank}: class {cls:4d}  p={prob:.4f}")
        if comparison:
            print(
                f"{args.model.name} in {comparison['framework']}: max abs error "
                f"{comparison['max_abs_error']:.2e} on the softmax"
            )
    return 0


def compare_with_source(path: Path, data, output) -> dict:
    """Run the model file in its own framework (no TVM compiler involved) and compare the
    softmax."""
    from tvm_mobilenet.model.frameworks import model_format, run_source
    from tvm_mobilenet.model.reference import as_probabilities

    framework, expected = run_source(model_format(path), path, data)
    error = float(abs(as_probabilities(output) - as_probabilities(expected)).max())
    return {"framework": framework, "max_abs_error": error}
