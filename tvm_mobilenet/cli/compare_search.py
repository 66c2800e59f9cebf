"""Command line: template vs auto search on each x86 depthwise and pointwise task, equal budgets.

tvm-mobilenet compare-search --trials 64 --at 16,64 --plot docs/search_styles.png
"""

from __future__ import annotations

from pathlib import Path

from tvm_mobilenet.bench.figures import pyplot, save
from tvm_mobilenet.cli.common import Parser, add_model_args, model_config


def format_table(curves, checkpoints) -> str:
    header = f"{'kind':10s} {'shape':32s} " + " ".join(
        f"{style + '@' + str(n):>13s}" for n in checkpoints for style in ("template", "auto")
    )
    lines = [header + "   (best us after N trials)"]
    by_task = {}
    for curve in curves:
        by_task.setdefault(curve.task.name, {})[curve.style] = curve
    for styles in by_task.values():
        task = next(iter(styles.values())).task
        cells = []
        for n in checkpoints:
            for style in ("template", "auto"):
                best = styles[style].best_at(n) if style in styles else None
                cells.append(f"{best * 1e6:13.1f}" if best else f"{'-':>13s}")
        lines.append(f"{task.kind:10s} {task.shape:32s} " + " ".join(cells))
    return "\n".join(lines)


def plot(curves, path: Path) -> None:
    plt = pyplot()
    names = sorted(
        {c.task.name for c in curves},
        key=lambda n: next(c.task.shape for c in curves if c.task.name == n),
    )
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        for curve in (c for c in curves if c.task.name == name):
            points = [(i + 1, s * 1e6) for i, s in enumerate(curve.best_seconds) if s]
            marker = "." if len(points) < 40 else None
            axis.plot(*zip(*points, strict=True), label=curve.style, marker=marker)
        task = next(c.task for c in curves if c.task.name == name)
        axis.set_title(f"{task.kind} {task.shape}", fontsize=8)
        axis.set_xlabel("trials")
        axis.set_yscale("log")
    axes[0][0].set_ylabel("best latency (us)")
    axes[0][0].legend()
    save(fig, path)


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.compare_search", description=__doc__.splitlines()[0]
    )
    add_model_args(parser, weights=False, files=False)  # tuning does not depend on the weights
    parser.add_argument("--device", default="host", help="x86 device (default: this host)")
    parser.add_argument(
        "--trials", type=int, default=64, help="trials per task and style (default 64)"
    )
    parser.add_argument("--at", default="16,64", help="trial counts to tabulate (default 16,64)")
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        help="compare every N-th depthwise and pointwise task (default 1: all 18)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of best latency against trials")
    args = parser.parse_args(argv)
    checkpoints = [int(n) for n in args.at.split(",")]

    from tvm_mobilenet.bench.compare_search import compare_search
    from tvm_mobilenet.devices import load_device

    curves = compare_search(
        model_config(args),
        load_device("x86", args.device),
        args.trials,
        args.every,
        print_fn=lambda line: print(line, flush=True),
    )
    print(format_table(curves, checkpoints))
    if args.plot:
        plot(curves, args.plot)
        print(f"wrote {args.plot}")
    return 0
