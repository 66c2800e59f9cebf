"""Command line: run an exported MobileNet .so with only the TVM runtime; print top-5 and latency.

    python -m tvm_mobilenet.run build/mobilenet_x86.so [--input x.npy] [--output y.npy] [--repeat N] [--json]

Threads follow TVM_NUM_THREADS; unset, all the cores this process may use (TVM alone would take half).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .cli_args import Parser, run_cli
from .runtime import use_runtime_only


def main(argv=None) -> int:
    parser = Parser(prog="python -m tvm_mobilenet.run", description=__doc__.splitlines()[0])
    parser.add_argument("module", type=Path, help="the .so written by tvm_mobilenet.compile")
    parser.add_argument("--input", type=Path, help="an NCHW float32 .npy (default: the fixed test input)")
    parser.add_argument("--output", type=Path, help="save the output probabilities as .npy")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs after one warm-up (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    use_runtime_only()
    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    from .reference import random_input  # pylint: disable=import-outside-toplevel
    from .runtime import LoadedModel, load_input  # pylint: disable=import-outside-toplevel

    model = LoadedModel(args.module)
    data = load_input(args.input) if args.input is not None else random_input(model.input_shape)
    result = model.run(data, repeat=args.repeat)
    if args.output is not None:
        result.save(args.output)
    if args.json:
        print(json.dumps({"module": str(args.module), "input_shape": list(model.input_shape),
                          "median_ms": result.median_ms, "latencies_ms": result.latencies_ms,
                          "top5": [[c, p] for c, p in result.top5()]}))
    else:
        print(f"{args.module}: input {'x'.join(map(str, model.input_shape))}, "
              f"median {result.median_ms:.2f} ms over {len(result.latencies_ms)} runs")
        for rank, (cls, prob) in enumerate(result.top5(), start=1):
            print(f"  top{rank}: class {cls:4d}  p={prob:.4f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
