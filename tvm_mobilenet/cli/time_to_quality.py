"""Command line: wall time from an empty log until the whole model is within 1.2x of its final
latency.

    tvm-mobilenet time-to-quality --out build/ttq --plot docs/time_to_quality.png

Tunes x86 on this host with the default budget into OUT/log (a new directory), then compiles the log
as it stood every --step-minutes and times those modules in turns. `--evaluate-only` redoes the
second half from OUT/trace.json and OUT/log. The final log is an ordinary tuning log: copy it to
tuning_logs/ to ship it. With --warm-start auto|DIR it tunes twice with the same budget, cold
(OUT/cold/) then warm-started (OUT/warm/), and times both runs' checkpoints in the same turns.
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.bench.figures import pyplot, save
from tvm_mobilenet.cli.common import Parser, add_model_args, model_config
from tvm_mobilenet.run.threads import allow_threads


def format_table(report) -> str:
    lines = [f"{'minutes':>8s} {'records':>8s} {'median ms':>10s} {'x final':>8s}"]
    for checkpoint in report.checkpoints:
        lines.append(
            f"{checkpoint.seconds / 60:8.1f} {checkpoint.records:8d} {checkpoint.median_ms:10.2f} "
            f"{checkpoint.median_ms / report.final_ms:8.2f}"
        )
    reached = report.time_to_quality()
    lines.append(
        f"time to quality (within 1.2x of the final {report.final_ms:.2f} ms, {report.threads} "
        f"threads): "
        f"{reached.seconds / 60:.1f} min ({reached.records} records)"
    )
    return "\n".join(lines)


def format_comparison(cold, warm) -> str:
    """Cold vs warm after the same budget: minutes to within 1.2x of each final, and the finals."""
    lines = []
    for name, report in (("cold", cold), ("warm", warm)):
        reached = report.time_to_quality()
        lines.append(
            f"{name}: within 1.2x of its final {report.final_ms:.2f} ms after "
            f"{reached.seconds / 60:.1f} min ({reached.records} records)"
        )
    best = min(cold.final_ms, warm.final_ms)
    warm_reached = next(c for c in warm.checkpoints if c.median_ms <= 1.2 * best)
    lines.append(
        f"warm: within 1.2x of the better final ({best:.2f} ms) after "
        f"{warm_reached.seconds / 60:.1f} min"
    )
    return "\n".join(lines)


def plot(reports: dict, path: Path) -> None:
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(5, 3.2))
    for name, report in reports.items():
        minutes = [c.seconds / 60 for c in report.checkpoints]
        label = f"{name} (median)" if name else "whole model (median)"
        axis.plot(minutes, [c.median_ms for c in report.checkpoints], marker="o", label=label)
    final = min(r.final_ms for r in reports.values())
    axis.axhline(1.2 * final, color="gray", linestyle="--", label="1.2x final")
    axis.set_xlabel("tuning wall time (min)")
    axis.set_ylabel(f"latency (ms, {report.threads} threads)")
    axis.set_ylim(bottom=0)
    axis.legend()
    save(fig, path)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.tune.api import DEFAULT_TRIALS

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.time_to_quality", description=__doc__.splitlines()[0]
    )
    add_model_args(parser, weights=False, files=False)
    parser.add_argument(
        "--out", type=Path, required=True, help="work directory (the log goes to OUT/log)"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"tuning budget (default {DEFAULT_TRIALS}, the tune command's default)",
    )
    parser.add_argument(
        "--step-minutes",
        type=float,
        default=5.0,
        help="compile the log as it stood every this many minutes (default 5)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="threads of the timed runs (default 2)"
    )
    parser.add_argument(
        "--repeat", type=int, default=30, help="timed calls per checkpoint (default 30)"
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="skip tuning: evaluate OUT/trace.json and OUT/log from an earlier run",
    )
    parser.add_argument(
        "--warm-start",
        metavar="auto|DIR",
        help="compare a cold run with one warm-started from this log (auto: the nearest log of "
        "the target family, as `tune --warm-start auto` picks it)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of latency against tuning time")
    args = parser.parse_args(argv)
    if args.step_minutes <= 0 or args.threads < 1 or args.repeat < 1:
        parser.error("--step-minutes, --threads and --repeat must be positive")
    allow_threads(args.threads)  # before the first timed module starts TVM's pool

    from tvm_mobilenet.bench import time_to_quality as ttq
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.source import BuiltinMobileNet
    from tvm_mobilenet.tune.api import TuneArgs

    model = BuiltinMobileNet(model_config(args))
    device = load_device("x86", "host")
    runs = {"": None} if args.warm_start is None else {"cold": None, "warm": args.warm_start}
    arms = []
    for name, warm_start in runs.items():
        out = args.out / name
        tune_args = TuneArgs(
            model=model,
            device=device,
            log_dir=out / "log",
            trials=args.trials,
            warm_start=warm_start,
        )
        trace_path = out / ttq.TRACE_FILE
        if args.evaluate_only:
            trace = ttq.load_trace(trace_path)
        else:
            trace = ttq.trace_tuning(
                tune_args, trace_path, print_fn=lambda line: print(line, flush=True)
            )
        checkpoints = ttq.checkpoints_of(trace, args.step_minutes * 60)
        arms.append(ttq.Arm(name, tune_args, checkpoints))
    reports = ttq.evaluate_arms(
        model,
        arms,
        args.out / "checkpoints",
        args.threads,
        args.repeat,
        print_fn=lambda line: print(line, flush=True),
    )
    for name, report in reports.items():
        (args.out / name / "time_to_quality.json").write_text(
            json.dumps(report.as_dict(), indent=1) + "\n"
        )
        print((f"{name}:\n" if name else "") + format_table(report))
    if args.warm_start is not None:
        print(format_comparison(reports["cold"], reports["warm"]))
    if args.plot:
        plot(reports, args.plot)
        print(f"wrote {args.plot}")
    return 0
