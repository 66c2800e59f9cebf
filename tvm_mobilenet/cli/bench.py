"""Command line: benchmark our MobileNet .so against ONNX Runtime, OpenVINO, TFLite/XNNPACK and
PyTorch.

    tvm-mobilenet bench [--module build/x.so] [--threads 1,2] [--repeat 30]
                        [--plot bench.png] [--json FILE.json] [--precision int8]

Every system runs the same model with the same weights; each is checked against the float64
reference before it is timed. Peers come with `pip install '.[bench]'`; a missing one is skipped
with a note. With --precision int8, every system runs one int8 TFLite file of the same weights
(TFLite/XNNPACK runs it, ONNX Runtime its QDQ twin, ours imports it) and is checked against the
TFLite interpreter's int8 output.
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.cli.common import Parser, add_model_args, model_config

ALL_PEERS = ("ort", "openvino", "tflite", "torch")
INT8_PEERS = ("tflite", "ort")  # bench/int8.py


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


def _peer_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in ALL_PEERS]
    if unknown:
        raise ValueError(text)
    return names


_int_list.__name__ = "comma-separated thread counts"
_peer_list.__name__ = f"comma-separated peers among {','.join(ALL_PEERS)}"


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.bench", description=__doc__.splitlines()[0]
    )
    add_model_args(parser)
    parser.add_argument(
        "--module",
        type=Path,
        help="our compiled .so (default: compile it now, with the records "
        "in the host's default log, tuning_logs/x86/host-<cpu>-<cores>c, if they are for this "
        "model)",
    )
    parser.add_argument(
        "--peers",
        type=_peer_list,
        help=f"peers to run (default {','.join(ALL_PEERS)}; with --precision int8 "
        f"{','.join(INT8_PEERS)}, the ones with an int8 path)",
    )
    parser.add_argument(
        "--threads", type=_int_list, default=[1, 2], help="thread counts (default 1,2)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=30,
        help="timed calls per system and thread count (default 30)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("bench.png"),
        help="bar chart to write (default bench.png)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="int8: the full-integer TFLite file of these weights, against TFLite/XNNPACK and "
        "ONNX Runtime (QDQ) int8 (default fp32)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE.json", help="also write the results as JSON"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat} must be >= 1")

    from tvm_mobilenet.bench.api import BenchArgs, run_benchmark
    from tvm_mobilenet.bench.report import format_table, write_plot

    report = run_benchmark(
        BenchArgs(
            config=model_config(args),
            peers=args.peers or list(INT8_PEERS if args.precision == "int8" else ALL_PEERS),
            threads=args.threads,
            repeat=args.repeat,
            module=args.module,
            weights_file=args.weights,
            seed=args.seed,
            precision=args.precision,
        )
    )
    print(format_table(report))
    write_plot(report, args.plot)
    print(f"wrote {args.plot}")
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
