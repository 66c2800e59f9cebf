"""Command line: benchmark our MobileNet .so against ONNX Runtime, OpenVINO, TFLite/XNNPACK and
PyTorch.

    tvm-mobilenet bench [--module build/x.so] [--threads 1,2] [--repeat 30]
                        [--plot bench.png] [--json FILE.json] [--precision int8]
    tvm-mobilenet bench --processes 5 [--module build/x.so] [--threads 1,2] [--repeat 50]
    tvm-mobilenet bench --profile --module build/x.so [--threads 1] [--peers ort]
    tvm-mobilenet bench --grid [--alphas 0.25,0.5,0.75,1.0] [--resolutions 128,160,192,224]
    tvm-mobilenet bench --target arm [--device rasp4b] --count-instructions [--json FILE.json]

Every system runs the same model with the same weights; each is checked against the float64
reference before it is timed, and each system's share of this machine's FMA peak (measured per
thread count by a register-only microkernel) is printed. `--processes N` instead starts N
separate processes per system and thread count and prints each one's median (ours through
`run`). `--grid` builds every alpha x resolution of the paper without tuning records and prints
one table of ours / best peer per thread count. Peers come with `pip install '.[bench]'`; a
missing one is skipped with a note. With
--precision int8, every system runs one int8 TFLite file of the same weights (TFLite/XNNPACK runs
it, ONNX Runtime its QDQ twin, ours imports it) and is checked against the TFLite interpreter's
int8 output. On ARM, without a board, `--count-instructions` counts the aarch64 instructions of
one inference of ours, TFLite/XNNPACK and ONNX Runtime in the emulated aarch64 machine
(`tvm-mobilenet setup emulation`), with ours per layer.
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.cli.common import BUILTIN_DEFAULTS, Parser, add_model_args, model_config

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


def _alpha_list(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values:
        raise ValueError(text)
    return values  # each checked by ModelConfig before anything is built


def _resolution_list(text: str) -> tuple[int, ...]:
    return tuple(_int_list(text))


_int_list.__name__ = "comma-separated thread counts"
_alpha_list.__name__ = "comma-separated widths"
_resolution_list.__name__ = "comma-separated resolutions"
_peer_list.__name__ = f"comma-separated peers among {','.join(ALL_PEERS)}"


def _write_json(path: Path | None, data) -> None:
    """--json: the report as JSON, if asked for."""
    if path is not None:
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {path}")


def _add_count_args(parser: Parser) -> None:
    group = parser.add_argument_group("ARM without a board: aarch64 instruction counts")
    group.add_argument(
        "--target",
        default="x86",
        help="x86 (default: time the systems here) or arm (with --count-instructions)",
    )
    group.add_argument("--device", help="the ARM device (targets/arm.json; default its default)")
    group.add_argument(
        "--count-instructions",
        action="store_true",
        help="count the aarch64 instructions of one inference of ours, TFLite/XNNPACK and ONNX "
        "Runtime under qemu, and ours per layer (needs `tvm-mobilenet setup emulation`; a "
        "full-size model takes several minutes)",
    )


def _add_grid_args(parser: Parser) -> None:
    from tvm_mobilenet.bench.grid import PAPER_ALPHAS, PAPER_RESOLUTIONS

    group = parser.add_argument_group("the paper's alpha x resolution grid, untuned")
    group.add_argument(
        "--grid",
        action="store_true",
        help="build every --alphas x --resolutions MobileNet without tuning records, bench each "
        "against the peers and print ours / best peer as one table per thread count",
    )
    group.add_argument(
        "--alphas",
        type=_alpha_list,
        default=PAPER_ALPHAS,
        help=f"with --grid: widths (default {','.join(map(str, PAPER_ALPHAS))})",
    )
    group.add_argument(
        "--resolutions",
        type=_resolution_list,
        default=PAPER_RESOLUTIONS,
        help=f"with --grid: resolutions (default {','.join(map(str, PAPER_RESOLUTIONS))})",
    )


def _grid(args, parser: Parser) -> int:
    from tvm_mobilenet.bench.grid import GridArgs, format_grid, run_grid

    single = {
        "--module": args.module is not None,
        "--model": args.model is not None,
        "--weights": args.weights is not None,
        "--alpha": args.alpha != BUILTIN_DEFAULTS["alpha"],
        "--resolution": args.resolution != BUILTIN_DEFAULTS["resolution"],
        "--plot": args.plot is not None,
        "--processes": args.processes is not None,
        "--app": args.app is not None,
        "--profile": args.profile,
        "--precision int8": args.precision != "fp32",
    }
    clashing = [flag for flag, given in single.items() if given]
    if clashing:
        parser.error(
            f"--grid builds its own untuned fp32 modules over --alphas x --resolutions and "
            f"writes no plot: drop {', '.join(clashing)}"
        )
    report = run_grid(
        GridArgs(_bench_args(args), alphas=args.alphas, resolutions=args.resolutions),
        print_fn=lambda line: print(line, flush=True),
    )
    print(format_grid(report))
    _write_json(args.json, report.as_dict())
    return 0


def _count_peers(args, parser: Parser) -> tuple[str, ...]:
    from tvm_mobilenet.bench.instructions import COUNTED_PEERS

    if args.target != "arm":
        parser.error("--count-instructions counts aarch64 instructions: add --target arm")
    if args.peers is None:
        return COUNTED_PEERS
    other = [name for name in args.peers if name not in COUNTED_PEERS]
    if other:
        parser.error(
            f"--count-instructions runs {','.join(COUNTED_PEERS)} (the peers with aarch64 "
            f"wheels), not {','.join(other)}"
        )
    return tuple(args.peers)


def _count(args, parser: Parser) -> int:
    from tvm_mobilenet.bench.count_report import format_counts
    from tvm_mobilenet.bench.instructions import CountArgs, count_systems
    from tvm_mobilenet.devices import load_device

    peers = _count_peers(args, parser)
    report = count_systems(
        CountArgs(
            config=model_config(args),
            device=load_device("arm", args.device),
            peers=peers,
            module=args.module,
            weights_file=args.weights,
            seed=args.seed,
        )
    )
    print(format_counts(report))
    _write_json(args.json, report.as_dict())
    return 0


def _bench_args(args):
    from tvm_mobilenet.bench.api import BenchArgs

    return BenchArgs(
        config=model_config(args),
        peers=args.peers or list(INT8_PEERS if args.precision == "int8" else ALL_PEERS),
        threads=args.threads,
        repeat=args.repeat,
        module=args.module,
        weights_file=args.weights,
        seed=args.seed,
        precision=args.precision,
        int8_multiply=args.int8_multiply,
    )


def _spread(args, parser: Parser) -> int:
    from tvm_mobilenet.bench.processes import format_spread, run_process_spread

    if args.processes < 1:
        parser.error(f"--processes {args.processes} must be >= 1")
    if args.app is not None and not args.app.is_file():
        parser.error(
            f"--app {args.app} does not exist: build the C++ app with "
            "`python -m tvm_mobilenet.bundle X.so -o DIR` (DIR/mobilenet_app)"
        )
    report = run_process_spread(_bench_args(args), args.processes, app=args.app)
    print(format_spread(report))
    _write_json(args.json, report.as_dict())
    return 0


def _profile(args, parser: Parser) -> int:
    from tvm_mobilenet.bench.profile import format_profile, profile_module
    from tvm_mobilenet.run.threads import allow_threads

    if args.module is None:
        parser.error("--profile profiles a compiled module: pass --module X.so")
    if args.peers not in (None, ["ort"]) or (args.peers and args.precision != "fp32"):
        parser.error("--profile compares layer by layer with --peers ort only, in fp32")
    allow_threads(max(args.threads))  # before the module's first call starts TVM's pool
    profiles = [profile_module(args.module, n, args.repeat, alone=True) for n in args.threads]
    print("\n\n".join(format_profile(profile) for profile in profiles))
    found = [p.as_dict() for p in profiles]
    if args.peers:
        for threads, entry in zip(args.threads, found, strict=True):
            entry["against_ort"] = _against_ort(args, threads).as_dict()
    _write_json(args.json, found)
    return 0


def _against_ort(args, threads: int):
    from tvm_mobilenet.bench.layers import compare_layers, format_layers
    from tvm_mobilenet.model.weights import get_weights

    config = model_config(args)
    weights = get_weights(config, args.weights, args.seed)
    comparison = compare_layers(args.module, config, weights, threads, args.repeat)
    print("\n" + format_layers(comparison))
    return comparison


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.bench", description=__doc__.splitlines()[0]
    )
    add_model_args(parser)
    parser.add_argument(
        "--module",
        type=Path,
        help="our compiled .so (default: compile it now, with the records "
        "in the device's default log, e.g. tuning_logs/x86/host-<cpu>-<cores>c, if they are for "
        "this model)",
    )
    parser.add_argument(
        "--peers",
        type=_peer_list,
        help=f"peers to run (default {','.join(ALL_PEERS)}; with --precision int8 or "
        f"--count-instructions {','.join(INT8_PEERS)})",
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
        "--int8-multiply",
        choices=("exact", "saturating"),
        default="exact",
        help="with --precision int8 and no --module: compile ours with exact (default) or "
        "saturating int8 multiplies (x86 AVX2, as ONNX Runtime; see README, int8)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE.json", help="also write the results as JSON"
    )
    parser.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="per-process spread: N separate processes per system and thread count, each "
        "printing its median (ours as `run` takes it), instead of the round-robin table",
    )
    parser.add_argument(
        "--app",
        type=Path,
        metavar="MOBILENET_APP",
        help="with --processes: also time ours through this build of the C++ app (an x86 "
        "bundle's mobilenet_app), the deployed path without Python",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="per-kernel profile of ours (--module, fp32 or int8) at each thread count: each "
        "kernel's time in the whole model, slowest first, and alone (called by itself, warm "
        "caches), and the sums per kind; with --peers ort "
        "(fp32) also ours and ONNX Runtime layer by layer, timed in turns",
    )
    _add_grid_args(parser)
    _add_count_args(parser)
    args = parser.parse_args(argv)
    if args.count_instructions:
        if args.precision != "fp32":
            parser.error("--count-instructions counts the fp32 model; drop --precision int8")
        return _count(args, parser)
    if args.device is not None:
        parser.error(
            "--device names the ARM device of --count-instructions; timings are of this host"
        )
    if args.target != "x86":
        parser.error(
            f"--target {args.target}: timings here are of this x86 host (emulated ARM timings "
            "mean nothing); for ARM add --count-instructions"
        )
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat} must be >= 1")
    if args.processes is not None and args.precision != "fp32":
        parser.error("--processes runs the fp32 model; drop --precision int8")
    if args.int8_multiply != "exact" and (args.precision != "int8" or args.module is not None):
        parser.error(
            "--int8-multiply compiles ours for --precision int8 (a --module is used as compiled)"
        )
    if args.grid:
        return _grid(args, parser)
    if args.app is not None and args.processes is None:
        parser.error("--app times the C++ app in separate processes: add --processes N")
    if args.processes is not None:
        return _spread(args, parser)
    if args.profile:
        return _profile(args, parser)

    from tvm_mobilenet.bench.api import run_benchmark
    from tvm_mobilenet.bench.report import format_table, write_plot

    report = run_benchmark(_bench_args(args))
    print(format_table(report))
    plot = args.plot or Path("bench.png")
    write_plot(report, plot)
    print(f"wrote {plot}")
    _write_json(args.json, report.as_dict())
    return 0
