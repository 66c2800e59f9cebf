"""Command line: tune MobileNet v1's convolutions for a target with MetaSchedule + XGBoost.

tvm-mobilenet tune                       # this x86 host, default budget
tvm-mobilenet tune --ops depthwise --trials 200 --log-dir my_logs
tvm-mobilenet tune --target arm --device rasp4b --rpc-tracker 127.0.0.1:9190 --rpc-key rasp4b
"""

from __future__ import annotations

from tvm_mobilenet.cli.common import (
    Parser,
    add_device_build_args,
    add_strassen_arg,
    model_device_and_log_dir,
    rpc_settings,
)


def format_report(report) -> str:
    lines = [
        f"{'kind':10s} {'shape':32s} {'MFLOP':>9s} {'calls':>5s} {'trials':>6s} {'best us':>10s} "
        f"{'GFLOP/s':>8s}"
    ]
    for result in report.results:
        task = result.task
        best = "-" if result.best_seconds is None else f"{result.best_seconds * 1e6:.1f}"
        gflops = "-" if result.gflops is None else f"{result.gflops:.1f}"
        lines.append(
            f"{task.kind:10s} {task.shape:32s} {task.flops / 1e6:9.2f} {task.weight:5d} "
            f"{result.trials:6d} {best:>10s} {gflops:>8s}"
        )
    total_us = sum((r.best_seconds or 0) * r.task.weight for r in report.results) * 1e6
    lines.append(
        f"sum of best task latencies x calls: {total_us / 1e3:.2f} ms; "
        f"{report.measured_now} trials measured in this run; log: {report.log_dir}"
    )
    if report.failed_now:
        lines.append(
            f"{report.failed_now} of them failed (first error: {report.first_error}); failed "
            "candidates stay in the log for diagnosis but do not count as trials: run the same "
            "command to retry them"
        )
    return "\n".join(lines)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.tune.api import DEFAULT_TRIALS

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.tune", description=__doc__.splitlines()[0]
    )
    add_device_build_args(parser, weights=False)  # tuning does not depend on the weights' values
    add_strassen_arg(parser)
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"total measured trials, split over the tasks (default {DEFAULT_TRIALS}); "
        "valid records already in the log count (failed candidates are retried)",
    )
    parser.add_argument(
        "--ops",
        choices=("depthwise", "pointwise", "all"),
        default="all",
        help="which tasks to tune (default all)",
    )
    parser.add_argument(
        "--search",
        choices=("both", "template", "auto"),
        default="both",
        help="design space: template = our schedules' knobs (AutoTVM-style), auto = "
        "MetaSchedule's generated space (Ansor-style), both = their union (default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the search (default 0)")
    parser.add_argument(
        "--warm-start",
        metavar="auto|DIR|none",
        default="auto",
        help="measure another log's best schedules here first and start the search from them: "
        "auto (default) = the nearest log of the same target family (shipped or local), only "
        "when this device has no valid record yet; DIR = that log; none = no warm start",
    )
    parser.add_argument(
        "--no-in-model-check",
        action="store_true",
        help="skip the check that ends a tune on this machine: each tuned kernel against its "
        "untuned schedule inside the whole model (compile uses the faster; ~15 s at 1.0/224)",
    )
    parser.add_argument(
        "--list-logs",
        action="store_true",
        help="list the tuning logs (shipped and local) and exit: `tvm-mobilenet logs`",
    )
    args = parser.parse_args(argv)
    if args.list_logs:
        from tvm_mobilenet.cli.logs import print_catalogue

        return print_catalogue()

    from tvm_mobilenet.errors import TuningError
    from tvm_mobilenet.tune.api import TuneArgs, tune

    model, device, log_dir, _ = model_device_and_log_dir(args)
    tune_args = TuneArgs(
        model=model,
        device=device,
        log_dir=log_dir,
        trials=args.trials,
        ops=args.ops,
        search=args.search,
        seed=args.seed,
        rpc=rpc_settings(args, device),
        ndk_cc=args.ndk_cc,
        warm_start=None if args.warm_start == "none" else args.warm_start,
        in_model_check=not args.no_in_model_check,
        strassen=not args.no_strassen,
    )
    try:
        report = tune(tune_args, print_fn=lambda line: print(line, flush=True))
    except TuningError as err:
        if getattr(err, "report", None) is not None:
            print(format_report(err.report))
        raise
    print(format_report(report))
    return 0
