"""ARM speed without a board: executed aarch64 instructions per inference of our module and of the
peers (TFLite/XNNPACK, ONNX Runtime), each in the emulated aarch64 machine under qemu's counting
plugin, on the same model with the same weights and input; per layer for ours, with llvm-mca's
estimate of each kernel's innermost loop.

One inference = (count with n + k inferences - count with n) / k: interpreter start-up, loading and
warm-up cancel out. One thread everywhere. Every system's output is checked against the float64
reference. Instruction counts do not depend on the machine's load; the proxy says nothing about
caches, memory bandwidth or stalls (see README "ARM speed without a board").
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_mobilenet.bench.count_report import OURS, CountReport, SystemCount, layer_rows
from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import TargetSpecError, VerificationError
from tvm_mobilenet.farm.attribute import Place, by_symbol, locate, read_maps
from tvm_mobilenet.farm.emulation import Emulation, require_emulation
from tvm_mobilenet.farm.insn_count import COUNTS, Block, CountedRun, count_instructions
from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.weights import get_weights

GUEST_SCRIPT = Path(__file__).with_name("guest_infer.py")
RUN_TIMEOUT_SEC = 3600  # one emulated run of the full model takes 0.5-1.5 min on a busy 2-core host
COUNTED_PEERS = ("tflite", "ort")  # the bench's peers that have aarch64 wheels
CPUINFO_CORE = "Cortex-A72"  # what scripts/setup_emulation.sh writes into the rootfs


def _tflite_bytes(config: ModelConfig, weights) -> bytes:
    from tvm_mobilenet.bench.tflite_model import build_tflite

    return build_tflite(config, weights)


def _onnx_bytes(config: ModelConfig, weights) -> bytes:
    from tvm_mobilenet.bench.onnx_model import build_onnx

    return build_onnx(config, weights).SerializeToString()


@dataclass(frozen=True)
class GuestPeer:
    """A peer as the emulated python runs it."""

    name: str  # in the report and the JSON
    label: str
    guest: str  # guest_infer.py's SYSTEM
    wheels: str  # its folder in the emulation cache's peer_wheels/
    distribution: str  # its wheel, for the version
    suffix: str
    write_model: Callable[[ModelConfig, dict], bytes]


PEERS = {
    "tflite": GuestPeer(
        "tflite_xnnpack",
        "TFLite/XNNPACK",
        "tflite",
        "litert",
        "ai_edge_litert",
        ".tflite",
        _tflite_bytes,
    ),
    "ort": GuestPeer(
        "onnxruntime",
        "ONNX Runtime",
        "onnxruntime",
        "onnxruntime",
        "onnxruntime",
        ".onnx",
        _onnx_bytes,
    ),
}


@dataclass
class CountArgs:
    config: ModelConfig
    device: DeviceSpec  # an ARM device that qemu emulates (its qemu_cpu)
    peers: tuple[str, ...] = COUNTED_PEERS
    module: Path | None = None  # our cross-compiled .so (None: compile it now)
    weights_file: Path | None = None
    seed: int = 0
    runs: tuple[int, int] = (1, 2)  # inferences in the two counted runs (n, n + k)
    tolerance: float = reference.SOFTMAX_TOLERANCE


@dataclass
class Counted:
    """One system's counts per inference, from two emulated runs."""

    counts: dict[str, float]  # COUNTS per inference
    startup_instructions: int  # the whole run with n inferences
    output: np.ndarray  # of the run with n + k inferences
    symbols: dict[tuple[str, str], dict[str, float]]  # per inference, by (file name, symbol)
    hottest: dict[tuple[str, str], tuple[Place, Block]]  # each symbol's hottest block there
    inferences: int  # in the run with n + k inferences
    seconds: float


class GuestRunner:
    """Runs guest_infer.py in the emulated python under the counting plugin."""

    def __init__(self, emu: Emulation, cpu: str, data_file: Path, work_dir: Path):
        self.emu, self.cpu, self.data_file, self.work_dir = emu, cpu, data_file, work_dir

    def _env(self, wheels: Path | None) -> dict[str, str]:
        env = self.emu.python_env(self.cpu, self.work_dir)
        if wheels is not None:
            env["PYTHONPATH"] = f"{wheels}:{env['PYTHONPATH']}"
        # one thread; no .pyc written (a first run writing them would count 1.5 G more)
        env.update(
            TVM_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
            PYTHONHASHSEED="0",
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def run(
        self, guest: str, model: Path, runs: int, wheels: Path | None, attribute: bool
    ) -> tuple[CountedRun, np.ndarray | None, dict]:
        """One counted run: its counts, its output, and its blocks' Places (if `attribute`)."""
        output, maps = self.work_dir / f"output_{runs}.npy", self.work_dir / "maps.txt"
        argv = [self.emu.python, GUEST_SCRIPT, guest, model, self.data_file, runs, output]
        if attribute:
            argv.append(maps)
        run = count_instructions(
            argv,
            sysroot=self.emu.rootfs,
            env=self._env(wheels),
            cpu=self.cpu,
            blocks=attribute,
            timeout=RUN_TIMEOUT_SEC,
        )
        places = {}
        if attribute:
            places = locate(run.blocks, read_maps(maps.read_text(), self.emu.rootfs))
        return run, (np.load(output) if runs else None), places

    def per_inference(
        self, guest: str, model: Path, runs: tuple[int, int], wheels: Path | None, attribute: bool
    ) -> Counted:
        start = time.perf_counter()
        (few, _, few_places), (more, output, more_places) = (
            self.run(guest, model, n, wheels, attribute) for n in runs
        )
        k = runs[1] - runs[0]
        few_symbols = by_symbol(few.blocks, few_places)
        more_symbols = by_symbol(more.blocks, more_places)
        symbols = {}
        for key, counts in more_symbols.items():
            diff = counts - few_symbols.get(key, Counter())  # Counter keeps positive differences
            if diff["instructions"]:
                symbols[key] = {name: diff[name] / k for name in COUNTS}
        return Counted(
            counts={name: (more.counts[name] - few.counts[name]) / k for name in COUNTS},
            startup_instructions=few.counts["instructions"],
            output=output,
            symbols=symbols,
            hottest=_hottest_blocks(more.blocks, more_places),
            inferences=runs[1],
            seconds=time.perf_counter() - start,
        )


def _hottest_blocks(blocks: list[Block], places: dict) -> dict:
    """Each symbol's block that executed the most instructions: its innermost loop, mostly."""
    hottest: dict[tuple[str, str], tuple[Place, Block]] = {}
    for block in blocks:
        place = places.get(block.vaddr)
        if place is None:
            continue
        best = hottest.get(place.key)
        if best is None or block.executed > best[1].executed:
            hottest[place.key] = (place, block)
    return hottest


def _emulated_cpu(device: DeviceSpec) -> str:
    if device.family != "arm" or not device.qemu_cpu:
        raise TargetSpecError(
            f"{device.label} cannot run in the emulated aarch64 Linux machine: count instructions "
            "for an ARM Linux device (--target arm --device rasp4b, rk3399 or aarch64-linux)"
        )
    return device.qemu_cpu


def _peer_version(wheels: Path, distribution: str) -> str:
    found = sorted(wheels.glob(f"{distribution}-*.dist-info"))
    return found[0].name.removesuffix(".dist-info").split("-")[1] if found else "?"


def _checked(system: SystemCount, output: np.ndarray, expected: np.ndarray, tolerance: float):
    probabilities = reference.as_probabilities(output)
    system.max_abs_error = float(np.max(np.abs(probabilities - expected)))
    if not system.max_abs_error <= tolerance:
        system.status = "wrong"
        if system.name == OURS:
            raise VerificationError(
                f"our module under emulation: max abs error {system.max_abs_error:.2e} against "
                f"the float64 reference > {tolerance:g}; was it built with the same "
                "--weights/--seed?"
            )


def count_systems(args: CountArgs, print_fn: Callable[[str], None] = print) -> CountReport:
    """Count ours and every installed peer; per layer and llvm-mca for ours."""
    from tvm_mobilenet.bench.api import compile_ours
    from tvm_mobilenet.model.source import BuiltinMobileNet

    cpu = _emulated_cpu(args.device)
    emu = require_emulation(counting=True)
    report = CountReport(args.config, args.device.label, cpu, list(args.runs))
    # Step 1. The weights, the fixed input, and the float64 answer every system must give.
    weights = get_weights(args.config, args.weights_file, args.seed)
    data = reference.sample_input(args.config)
    expected = reference.forward(args.config, weights, data)
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_count_") as tmp:
        work_dir = Path(tmp)
        np.save(work_dir / "input.npy", data)
        runner = GuestRunner(emu, cpu, work_dir / "input.npy", work_dir)
        # Step 2. Ours: the given .so, or cross-compiled now; counted with attribution.
        model = BuiltinMobileNet(args.config, args.weights_file, args.seed)
        ours = args.module or compile_ours(
            model, args.device, work_dir / "ours.so", args.tolerance, print_fn
        )
        report.notes.append(f"ours: {args.module or 'compiled for this run'}")
        report.notes.append(
            f"the guest's /proc/cpuinfo ({emu.cpuinfo}) says {CPUINFO_CORE}: the peers pick "
            f"their kernels for that core (XNNPACK's differ for an unknown core), whatever --device"
        )
        print_fn(f"counting {OURS} under qemu ({cpu}, runs of {args.runs[0]} and {args.runs[1]})")
        counted = runner.per_inference("tvm", Path(ours).resolve(), args.runs, None, True)
        _add_system(report, SystemCount(OURS, OURS, _tvm_version()), counted, expected, args)
        # Step 3. Per layer for ours, with llvm-mca's estimate of each kernel's hottest loop.
        report.layers, report.outside = layer_rows(
            model.module(), args.device, Path(ours).name, counted, report.notes
        )
        # Step 4. The peers, each on its own model file of the same weights.
        for name in args.peers:
            _count_peer(PEERS[name], runner, emu, weights, expected, args, report, print_fn)
    return report


def _tvm_version() -> str:
    import tvm

    return f"TVM {tvm.__version__}"


def _add_system(report: CountReport, system: SystemCount, counted: Counted, expected, args):
    system.counts = counted.counts
    system.startup_instructions = counted.startup_instructions
    system.seconds = counted.seconds
    _checked(system, counted.output, expected, args.tolerance)
    report.systems.append(system)


def _count_peer(peer: GuestPeer, runner, emu, weights, expected, args, report, print_fn) -> None:
    wheels = emu.peer_wheels(peer.wheels)
    if not (wheels / ".complete").is_file():
        report.notes.append(
            f"{peer.label} skipped: its aarch64 wheels are not in {wheels} "
            "(run `tvm-mobilenet setup emulation`)"
        )
        return
    try:
        model_bytes = peer.write_model(args.config, weights)
    except ImportError as err:
        report.notes.append(
            f"{peer.label} skipped: cannot write its model file here ({err}); "
            "pip install '.[bench]'"
        )
        return
    model = runner.work_dir / f"model{peer.suffix}"
    model.write_bytes(model_bytes)
    print_fn(f"counting {peer.name} under qemu")
    counted = runner.per_inference(peer.guest, model, args.runs, wheels, False)
    system = SystemCount(peer.name, peer.label, _peer_version(wheels, peer.distribution))
    _add_system(report, system, counted, expected, args)
