"""What `bench --count-instructions` reports: instructions per inference of each system, ours per
layer with llvm-mca's estimate of each kernel's hottest loop; as text and as JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import tvm

from tvm_mobilenet.bench.mca import LoopEstimate, estimate_block, mca_binary
from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.model.architecture import ModelConfig

OURS = "tvm_mobilenet"
MEGA = 1e6
OUTSIDE_SHOWN = 10  # the largest functions outside our kernels that the JSON lists


@dataclass
class SystemCount:
    """One system's instructions per inference, by class, and its output check."""

    name: str
    label: str
    version: str
    counts: dict[str, float] = field(default_factory=dict)  # farm.insn_count.COUNTS
    startup_instructions: int = 0  # the whole run with the fewer inferences
    seconds: float = 0.0  # wall time of its two emulated runs
    max_abs_error: float | None = None  # softmax against the float64 reference
    status: str = "counted"  # or "wrong": its output disagrees with the reference

    @property
    def instructions(self) -> float:
        return self.counts["instructions"]

    @property
    def fma_share(self) -> float:
        return self.counts["fma_instructions"] / self.instructions if self.instructions else 0.0

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "version": self.version,
            **{name: round(value) for name, value in self.counts.items()},
            "fma_share": round(self.fma_share, 4),
            "startup_instructions": self.startup_instructions,
            "max_abs_error": self.max_abs_error,
            "status": self.status,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class KernelRow:
    """One of our kernels (a task) in one inference, over all its calls."""

    kernel: str
    kind: str
    shape: str
    calls: int
    macs: int  # all calls
    lanes: int  # fp32 lanes of one vector FMA: the ideal is one FMA per `lanes` mult-adds
    counts: dict[str, float]
    hot_loop_share: float | None = None  # of the kernel's instructions, in its hottest block
    loop: list[LoopEstimate] = field(default_factory=list)  # llvm-mca on that block, per core

    @property
    def ideal(self) -> float:
        return self.macs / self.lanes

    @property
    def excess(self) -> float:
        return self.counts["instructions"] - self.ideal

    @property
    def times_ideal(self) -> float | None:
        return self.counts["instructions"] / self.ideal if self.ideal else None

    def as_dict(self) -> dict:
        return {
            "kernel": self.kernel,
            "kind": self.kind,
            "shape": self.shape,
            "calls": self.calls,
            "macs": self.macs,
            **{name: round(value) for name, value in self.counts.items()},
            "times_ideal": None if self.times_ideal is None else round(self.times_ideal, 3),
            "hot_loop_share": self.hot_loop_share,
            "hot_loop_mca": [estimate.as_dict() for estimate in self.loop],
        }


@dataclass
class CountReport:
    config: ModelConfig
    device: str
    qemu_cpu: str
    runs: list[int]
    systems: list[SystemCount] = field(default_factory=list)
    layers: list[KernelRow] = field(default_factory=list)  # ours, furthest from ideal first
    outside: dict[str, float] = field(default_factory=dict)  # ours' instructions not in kernels
    notes: list[str] = field(default_factory=list)

    def system(self, name: str) -> SystemCount | None:
        return next((system for system in self.systems if system.name == name), None)

    def best_peer(self) -> SystemCount | None:
        peers = [s for s in self.systems if s.name != OURS and s.status == "counted"]
        return min(peers, key=lambda system: system.instructions, default=None)

    def ours_over_best(self) -> float | None:
        ours, best = self.system(OURS), self.best_peer()
        if ours is None or best is None:
            return None
        return ours.instructions / best.instructions

    def as_dict(self) -> dict:
        ratio, best = self.ours_over_best(), self.best_peer()
        return {
            "model": self.config.key,
            "device": self.device,
            "qemu_cpu": self.qemu_cpu,
            "runs": self.runs,
            "systems": {system.name: system.as_dict() for system in self.systems},
            "ours_over_best": None if ratio is None else round(ratio, 4),
            "best_peer": None if best is None else best.name,
            "layers": [row.as_dict() for row in self.layers],
            "outside_kernels": round(sum(self.outside.values())),
            "outside_kernels_largest": {
                name: round(value) for name, value in list(self.outside.items())[:OUTSIDE_SHOWN]
            },
            "notes": self.notes,
        }


def tvm_kernel(symbol: str) -> str:
    """A TVM fused function's symbols (entry `__tvm_ffi_X`, body `X_compute_`) as one name."""
    return re.sub(r"_compute_$", "", symbol.removeprefix("__tvm_ffi_"))


def _kernel_totals(counted, library: str) -> tuple[dict, dict, dict]:
    """Ours per kernel name, the rest by "file:symbol", and each kernel's hottest block."""
    kernels: dict[str, dict[str, float]] = {}
    outside: dict[str, float] = {}
    for (file_name, symbol), counts in counted.symbols.items():
        if file_name == library:
            totals = kernels.setdefault(tvm_kernel(symbol), dict.fromkeys(counts, 0.0))
            for name, value in counts.items():
                totals[name] += value
        else:
            outside[f"{file_name}:{symbol}"] = counts["instructions"]
    hottest: dict[str, tuple] = {}
    for (file_name, symbol), (place, block) in counted.hottest.items():
        best = hottest.get(tvm_kernel(symbol))
        if file_name == library and (best is None or block.executed > best[1].executed):
            hottest[tvm_kernel(symbol)] = (place, block)
    return kernels, outside, hottest


def layer_rows(
    mod: tvm.IRModule, device: DeviceSpec, library: str, counted, notes: list[str]
) -> tuple[list[KernelRow], dict[str, float]]:
    """Our kernels' rows (furthest from ideal first) and what ran outside them, largest first."""
    from tvm_mobilenet.schedules.templates import family_module
    from tvm_mobilenet.tasks.extract import extract_tasks, multiply_adds

    lanes = family_module(device.schedule_family).params_for(device.target).lanes
    kernels, outside, hottest = _kernel_totals(counted, library)
    mca = mca_binary()
    if mca is None:
        notes.append("llvm-mca is not installed: no loop estimates (apt-get install llvm-19)")
    rows = []
    for task in extract_tasks(mod, device.target):
        counts = kernels.pop(task.name, None)
        if counts is None:
            continue
        macs = multiply_adds(task) * task.weight
        row = KernelRow(task.name, task.kind, task.shape, task.weight, macs, lanes, counts)
        if task.name in hottest:
            place, block = hottest[task.name]
            row.hot_loop_share = round(
                block.executed / (counted.inferences * counts["instructions"]), 3
            )
            if mca is not None:
                row.loop = estimate_block(place.path, place.address, block.instructions, mca)
        rows.append(row)
    for name, counts in kernels.items():  # TVM's own helpers in the .so
        outside[f"{library}:{name}"] = counts["instructions"]
    rows.sort(key=lambda row: -row.excess)
    return rows, dict(sorted(outside.items(), key=lambda item: -item[1]))


def _mega(value: float) -> str:
    """Millions, or thousands below one million (the small models)."""
    return f"{value / MEGA:.2f} M" if abs(value) >= MEGA else f"{value / 1e3:.1f} K"


def _systems_table(report: CountReport) -> list[str]:
    best = report.best_peer()
    lines = [
        f"{'system':16} {'version':18} {'instr/inference':>15} {'vector FMA':>12} "
        f"{'FMA share':>9} {'loads/stores':>12} {'÷ best peer':>11} {'max abs err':>11}"
    ]
    for system in report.systems:
        ratio = f"{system.instructions / best.instructions:.2f}" if best else "-"
        error = f"{system.max_abs_error:.1e}" if system.max_abs_error is not None else "-"
        lines.append(
            f"{system.name:16} {system.version:18} {_mega(system.instructions):>15} "
            f"{_mega(system.counts['fma_instructions']):>12} {system.fma_share:>9.1%} "
            f"{_mega(system.counts['loads_stores']):>12} {ratio:>11} {error:>11}"
            + ("  WRONG OUTPUT" if system.status == "wrong" else "")
        )
    ratio = report.ours_over_best()
    if ratio is not None:
        lines.append(
            f"ours / best peer ({best.label}) = {ratio:.2f} in instructions; FMA share "
            f"{report.system(OURS).fma_share:.1%} vs {best.fma_share:.1%} "
            "(goal: <= 1.0 with a share at least as high)"
        )
    return lines


def _loop_cell(row: KernelRow) -> str:
    if not row.loop:
        return "-"
    first = row.loop[0]
    per_cycle = " / ".join(f"{estimate.fma_per_cycle:.2f}" for estimate in row.loop)
    return f"{first.instructions:3d} instr {first.fma:3d} fma  {per_cycle}"


def _layers_table(report: CountReport) -> list[str]:
    cores = " / ".join(estimate.cpu for estimate in next((r.loop for r in report.layers), []))
    lines = [
        "per layer (ours): instructions of all calls in one inference; ideal = one vector FMA per "
        "lane-width of mult-adds; furthest from ideal first",
        f"{'kernel':28} {'kind':9} {'shape':27} {'calls':>5} {'instr':>10} {'FMA share':>9} "
        f"{'x ideal':>7} {'excess':>10} {'hot loop':>8}  llvm-mca hot loop, fma/cycle "
        f"({cores or 'no llvm-mca'})",
    ]
    for row in report.layers:
        ideal = f"{row.times_ideal:.2f}" if row.times_ideal else "-"
        share = row.counts["fma_instructions"] / row.counts["instructions"]
        hot = f"{row.hot_loop_share:.0%}" if row.hot_loop_share is not None else "-"
        lines.append(
            f"{row.kernel:28} {row.kind:9} {row.shape:27} {row.calls:>5} "
            f"{_mega(row.counts['instructions']):>10} {share:>9.0%} {ideal:>7} "
            f"{_mega(max(row.excess, 0.0)):>10} {hot:>8}  {_loop_cell(row)}"
        )
    top = ", ".join(f"{name} {_mega(value)}" for name, value in list(report.outside.items())[:3])
    lines.append(f"outside the kernels: {_mega(sum(report.outside.values()))} ({top})")
    models = {(e.cpu, e.model, e.llvm_mca) for row in report.layers for e in row.loop}
    for cpu, model, mca in sorted(models):
        lines.append(f"llvm-mca: {mca} -mcpu={cpu} used LLVM's {model} scheduling model")
    return lines


def format_counts(report: CountReport) -> str:
    config = report.config
    lines = [
        f"MobileNet v1 alpha={config.alpha} resolution={config.resolution} batch={config.batch}, "
        f"fp32, 1 thread; {report.device} emulated by qemu-aarch64 ({report.qemu_cpu})",
        f"aarch64 instructions per inference (count of {report.runs[1]} inferences minus count "
        f"of {report.runs[0]})",
        *_systems_table(report),
        "",
        *_layers_table(report),
    ]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)
