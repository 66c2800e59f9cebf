"""The benchmark's results: a table of medians with each system's ratio to ours, each system's share
of the measured FMA peak, a PNG bar chart and a JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tvm_mobilenet.bench.figures import pyplot
from tvm_mobilenet.bench.harness import SystemResult
from tvm_mobilenet.bench.machine import Machine
from tvm_mobilenet.bench.peak import MeasuredPeak, percent_of_peak
from tvm_mobilenet.model.architecture import ModelConfig, layers

OURS = "tvm_mobilenet"
GOAL_RATIO = 0.95  # issue 7: ours <= 0.95x the best peer


@dataclass
class BenchReport:
    config: ModelConfig
    threads: list[int]
    repeat: int
    results: list[SystemResult] = field(default_factory=list)
    peaks: dict[int, MeasuredPeak] = field(default_factory=dict)  # per thread count
    notes: list[str] = field(default_factory=list)
    precision: str = "fp32"
    machine: Machine = field(default_factory=Machine)  # where and when the run started

    @property
    def flops(self) -> int:
        """2 x the paper's mult-adds (convolutions and classifier) for one batch."""
        return 2 * sum(layer.macs(self.config.batch) for layer in layers(self.config))

    def result(self, name: str, threads: int) -> SystemResult | None:
        return next((r for r in self.results if r.name == name and r.threads == threads), None)

    def system_names(self) -> list[str]:
        return list(dict.fromkeys(r.name for r in self.results))

    def ratio(self, name: str, threads: int) -> float | None:
        """The system's median over ours (above 1: ours is faster)."""
        mine, ours = self.result(name, threads), self.result(OURS, threads)
        if mine is None or ours is None or mine.median_ms is None or ours.median_ms is None:
            return None
        return mine.median_ms / ours.median_ms

    def best_peer(self, threads: int) -> SystemResult | None:
        timed = [
            r
            for r in self.results
            if r.threads == threads and r.name != OURS and r.median_ms is not None
        ]
        return min(timed, key=lambda r: r.median_ms, default=None)

    def peak_percent(self, name: str, threads: int) -> float | None:
        """The system's share of the FMA peak measured at `threads` (flops / median / peak)."""
        result, peak = self.result(name, threads), self.peaks.get(threads)
        if peak is None or result is None or result.median_ms is None:
            return None
        return percent_of_peak(self.flops, result.median_ms, peak)

    def as_dict(self) -> dict:
        c = self.config
        return {
            "machine": self.machine.as_dict(),
            "model": c.key,
            "precision": self.precision,
            "gflop": self.flops / 1e9,
            "threads": self.threads,
            "repeat": self.repeat,
            "results": [r.as_dict() for r in self.results],
            "ratio_to_ours": {
                f"{r.name}@{r.threads}": self.ratio(r.name, r.threads) for r in self.results
            },
            "fma_peak": {str(n): peak.as_dict() for n, peak in self.peaks.items()},
            "percent_of_fma_peak": {
                f"{r.name}@{r.threads}": self.peak_percent(r.name, r.threads) for r in self.results
            },
            "notes": self.notes,
        }


def _cell(result: SystemResult | None, ratio: float | None) -> str:
    if result is None:
        return f"{'-':>9s} {'':>7s}"
    if result.median_ms is None:
        return f"{result.status:>9s} {'':>7s}"
    return (
        f"{result.median_ms:9.2f} {ratio:6.2f}x"
        if ratio is not None
        else f"{result.median_ms:9.2f} {'':>7s}"
    )


def format_table(report: BenchReport) -> str:
    c = report.config
    lines = [
        report.machine.describe(),
        f"MobileNet v1 alpha={c.alpha} resolution={c.resolution} batch={c.batch}, "
        f"{report.precision}, "
        f"{report.flops / 1e9:.3f} GFLOP; median of {report.repeat} calls per system, taken "
        f"round-robin",
        f"{'system':16s} {'version':26s}"
        + "".join(f" {f'{n} thread' + ('s' if n > 1 else ''):>17s}" for n in report.threads),
        f"{'':16s} {'':26s}" + f" {'ms':>9s} {'÷ ours':>7s}" * len(report.threads),
    ]
    for name in report.system_names():
        first = next(r for r in report.results if r.name == name)
        cells = "".join(
            " " + _cell(report.result(name, n), report.ratio(name, n)) for n in report.threads
        )
        lines.append(f"{first.label:16s} {first.version[:26]:26s}{cells}")
    for n in report.threads:
        best, ours = report.best_peer(n), report.result(OURS, n)
        if best is not None and ours is not None and ours.median_ms is not None:
            lines.append(
                f"{n} thread(s): ours / best peer ({best.label}) = "
                f"{ours.median_ms / best.median_ms:.2f} "
                f"(goal <= {GOAL_RATIO})"
            )
        if n in report.peaks:
            lines.append(_peak_line(report, n))
    for result in report.results:
        if result.status in ("wrong", "failed"):
            lines.append(
                f"{result.label} at {result.threads} thread(s): {result.status}: {result.note}"
            )
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def _peak_line(report: BenchReport, threads: int) -> str:
    shares = [
        f"{result.label} {percent:.0f}%"
        for result in report.results
        if result.threads == threads
        and (percent := report.peak_percent(result.name, threads)) is not None
    ]
    return (
        f"{threads} thread(s): share of the FMA peak ({report.peaks[threads].describe()}): "
        + ", ".join(shares)
    )


def write_plot(report: BenchReport, path: str | Path) -> None:
    """A grouped bar chart: one group per thread count, one bar per timed system, labelled in ms."""
    plt = pyplot()
    names = report.system_names()
    width = 0.8 / max(len(names), 1)
    figure, axes = plt.subplots(figsize=(2.2 + 1.2 * len(names) * len(report.threads) / 2, 4.2))
    for index, name in enumerate(names):
        label = next(r.label for r in report.results if r.name == name)
        xs, heights, texts = [], [], []
        for group, n in enumerate(report.threads):
            result, ratio = report.result(name, n), report.ratio(name, n)
            if result is not None and result.median_ms is not None:
                xs.append(group + (index - (len(names) - 1) / 2) * width)
                heights.append(result.median_ms)
                texts.append(
                    f"{result.median_ms:.1f}" + (f"\n{ratio:.2f}x" if ratio is not None else "")
                )
        bars = axes.bar(xs, heights, width, label=label)
        axes.bar_label(bars, labels=texts, fontsize=7)
    axes.set_xticks(
        range(len(report.threads)), [f"{n} thread{'s' if n > 1 else ''}" for n in report.threads]
    )
    axes.set_ylabel("median latency, ms (lower is better)")
    axes.margins(y=0.15)
    c = report.config
    axes.set_title(
        f"MobileNet v1 {c.alpha}/{c.resolution}, batch {c.batch}, {report.precision} "
        "(labels: ms, ratio to ours)",
        fontsize=10,
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
