"""Command line: run an exported MobileNet .so with only the TVM runtime; print top-5 and latency.

    python -m tvm_mobilenet.run build/mobilenet_x86.so [--input x.npy] [--output y.npy] [--repeat N] [--json]
    python -m tvm_mobilenet.run build/m_rasp4b.so --rpc-tracker 127.0.0.1:9190 --rpc-key rasp4b

Threads follow TVM_NUM_THREADS, as in any TVM runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

from .cli_args import Parser, add_rpc_args, run_cli
from .runtime import use_runtime_only


def load_model_file(args):
    """The module loaded here with the runtime only, or on a remote device with --rpc-tracker."""
    if args.rpc_tracker is None:
        use_runtime_only()
        from .runtime import LoadedModel  # pylint: disable=import-outside-toplevel

        model = LoadedModel(args.module)
        return model, model.input_shape, "this machine"
    from .cli_args import rpc_settings  # pylint: disable=import-outside-toplevel
    from .remote import RemoteModel  # pylint: disable=import-outside-toplevel
    from .rpc_farm import emulated_keys  # pylint: disable=import-outside-toplevel

    rpc = rpc_settings(args)
    model = RemoteModel(args.module, rpc)
    where = model.label + (" (emulated: the latency is not performance)" if rpc.key in emulated_keys() else "")
    return model, model.input_shape(), where


def main(argv=None) -> int:
    parser = Parser(prog="python -m tvm_mobilenet.run", description=__doc__.splitlines()[0])
    parser.add_argument("module", type=Path, help="the .so written by tvm_mobilenet.compile")
    parser.add_argument("--input", type=Path, help="an NCHW float32 .npy (default: the fixed test input)")
    parser.add_argument("--output", type=Path, help="save the output probabilities as .npy")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs after one warm-up (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_rpc_args(parser, ndk=False)
    args = parser.parse_args(argv)

    model, input_shape, where = load_model_file(args)
    from .reference import random_input  # pylint: disable=import-outside-toplevel
    from .runtime import load_input  # pylint: disable=import-outside-toplevel

    data = load_input(args.input) if args.input is not None else random_input(input_shape)
    result = model.run(data, repeat=args.repeat)
    if args.output is not None:
        result.save(args.output)
    if args.json:
        print(json.dumps({"module": str(args.module), "input_shape": list(input_shape), "ran_on": where,
                          "median_ms": result.median_ms, "latencies_ms": result.latencies_ms,
                          "top5": [[c, p] for c, p in result.top5()]}))
    else:
        print(f"{args.module}: input {'x'.join(map(str, input_shape))}, "
              f"median {result.median_ms:.2f} ms over {len(result.latencies_ms)} runs on {where}")
        for rank, (cls, prob) in enumerate(result.top5(), start=1):
            print(f"  top{rank}: class {cls:4d}  p={prob:.4f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
