"""`bench --grid`: the paper's width x resolution family, each point built without tuning records
and benchmarked against the peers, as one table of ours / best peer per thread count.

Why untuned: it is what every user runs before tuning, and MobileNet's small members (alpha 0.25-0.5
at 128-160, what low-end phones run) are where a compiler's fixed costs show. Each point is
compiled, checked against the float64 reference and timed round-robin with the peers exactly as
`bench --module` does (api.run_benchmark); the grid only collects the ratios."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tvm_mobilenet.bench.api import BenchArgs, run_benchmark
from tvm_mobilenet.bench.load import OthersCpu
from tvm_mobilenet.bench.machine import Machine
from tvm_mobilenet.bench.report import OURS, BenchReport
from tvm_mobilenet.model.architecture import ModelConfig

PAPER_ALPHAS = (0.25, 0.5, 0.75, 1.0)  # Howard et al. 2017, Table 6
PAPER_RESOLUTIONS = (128, 160, 192, 224)  # Table 7
GRID_GOAL = 1.5  # issue 15: ours untuned <= 1.5x the best peer at every point


@dataclass
class GridArgs:
    bench: BenchArgs  # everything but the model's alpha and resolution (and the module)
    alphas: tuple[float, ...] = PAPER_ALPHAS
    resolutions: tuple[int, ...] = PAPER_RESOLUTIONS


@dataclass
class Comparison:
    """Ours against the fastest peer at one point and thread count (medians, ms)."""

    ours_ms: float
    best_ms: float
    best_label: str

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.best_ms  # below 1: ours is faster

    def text(self) -> str:
        return f"{self.ratio:.2f} ({_ms(self.ours_ms)} / {_ms(self.best_ms)})"


@dataclass
class GridReport:
    alphas: tuple[float, ...]
    resolutions: tuple[int, ...]
    threads: list[int]
    points: dict[tuple[float, int], BenchReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: Machine = field(default_factory=Machine)  # where and when the grid started

    def compare(self, alpha: float, resolution: int, threads: int) -> Comparison | None:
        """Ours against the fastest peer at one point; None where either was not timed."""
        report = self.points.get((alpha, resolution))
        if report is None:
            return None
        ours, best = report.result(OURS, threads), report.best_peer(threads)
        if best is None or ours is None or ours.median_ms is None:
            return None
        return Comparison(ours.median_ms, best.median_ms, best.label)

    def comparisons(self, threads: int) -> list[Comparison]:
        found = (self.compare(a, r, threads) for a, r in self.points)
        return [comparison for comparison in found if comparison is not None]

    def as_dict(self) -> dict:
        return {
            "machine": self.machine.as_dict(),
            "alphas": list(self.alphas),
            "resolutions": list(self.resolutions),
            "threads": self.threads,
            "goal": GRID_GOAL,
            "points": [
                {
                    "alpha": alpha,
                    "resolution": resolution,
                    "ours_over_best_peer": {
                        str(n): getattr(self.compare(alpha, resolution, n), "ratio", None)
                        for n in self.threads
                    },
                    "bench": report.as_dict(),
                }
                for (alpha, resolution), report in self.points.items()
            ],
            "notes": self.notes,
        }


def run_grid(args: GridArgs, print_fn: Callable[[str], None] = print) -> GridReport:
    """Compile each alpha x resolution untuned, bench it against the peers, collect the ratios."""
    from tvm_mobilenet.compile.api import CompileArgs, compile_model
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.source import BuiltinMobileNet

    device = load_device("x86")
    report = GridReport(args.alphas, args.resolutions, list(args.bench.threads))
    # every point's config first: a bad alpha or resolution fails before anything is built
    configs = [
        replace(args.bench.config, alpha=alpha, resolution=resolution)
        for alpha in args.alphas
        for resolution in args.resolutions
    ]
    others = OthersCpu()
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_grid_") as work_dir:
        for index, config in enumerate(configs, 1):
            module = Path(work_dir) / f"untuned_{config.alpha}_{config.resolution}.so"
            start = time.monotonic()
            compile_model(
                CompileArgs(
                    model=BuiltinMobileNet(config, args.bench.weights_file, args.bench.seed),
                    device=device,
                    output=module,
                    log_dir=None,
                    tolerance=args.bench.tolerance,
                ),
                print_fn=lambda line: None,
            )
            built = time.monotonic() - start
            point = run_benchmark(
                replace(args.bench, config=config, module=module), print_fn=lambda line: None
            )
            report.points[(config.alpha, config.resolution)] = point
            module.unlink()
            print_fn(f"[{index}/{len(configs)}] {_point_line(report, config, built)}")
    report.notes.append(others.note())
    return report


def _point_line(report: GridReport, config: ModelConfig, built_s: float) -> str:
    cells = []
    for n in report.threads:
        found = report.compare(config.alpha, config.resolution, n)
        cells.append(
            f"{n} thread(s) {found.text()} ms, {found.best_label}"
            if found
            else f"{n} thread(s): no peer timed"
        )
    return (
        f"alpha {config.alpha} resolution {config.resolution}: built untuned in {built_s:.0f} s; "
        + "; ".join(cells)
    )


def _cell(report: GridReport, alpha: float, resolution: int, threads: int) -> str:
    found = report.compare(alpha, resolution, threads)
    return found.text() if found else "-"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"  # tiny models: 3 digits


def format_grid(report: GridReport) -> str:
    """Per thread count a markdown table (rows alpha, columns resolution) of ours / best peer
    (ours ms / best peer ms), then which peer was best, the range against the goal, and errors."""
    lines = [report.machine.describe()]
    for n in report.threads:
        lines += [
            "",
            f"untuned, {n} thread(s): ours / best peer (ours ms / best peer ms), medians taken "
            "round-robin",
            "| α \\ ρ | " + " | ".join(str(r) for r in report.resolutions) + " |",
            "|---" * (len(report.resolutions) + 1) + "|",
        ]
        for alpha in report.alphas:
            cells = (_cell(report, alpha, r, n) for r in report.resolutions)
            lines.append(f"| {alpha} | " + " | ".join(cells) + " |")
        lines += _summary(report, n)
    errors = [
        result.max_abs_error
        for point in report.points.values()
        for result in point.results
        if result.max_abs_error is not None and result.status == "timed"
    ]
    if errors:
        lines.append(f"every timed system within {max(errors):.1e} of the float64 reference")
    for (alpha, resolution), point in report.points.items():
        lines += [
            f"alpha {alpha} resolution {resolution}: {r.label} at {r.threads} thread(s): "
            f"{r.status}: {r.note}"
            for r in point.results
            if r.status in ("wrong", "failed")
        ]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def _summary(report: GridReport, threads: int) -> list[str]:
    found = report.comparisons(threads)
    if not found:
        return ["no peer was timed: nothing to compare"]
    ratios = [comparison.ratio for comparison in found]
    best = Counter(comparison.best_label for comparison in found)
    within = sum(ratio <= GRID_GOAL for ratio in ratios)
    return [
        f"{threads} thread(s): ours / best peer {min(ratios):.2f}-{max(ratios):.2f} "
        f"(median {statistics.median(ratios):.2f}); goal <= {GRID_GOAL}: met at {within} of "
        f"{len(ratios)} points",
        "best peer: " + ", ".join(f"{label} at {count}" for label, count in best.most_common()),
    ]
