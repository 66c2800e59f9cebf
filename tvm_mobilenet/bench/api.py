"""Python entry point of the benchmark: the same MobileNet in every installed peer and in ours,
checked against the float64 reference, then timed round-robin at each thread count."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tvm_mobilenet.bench.harness import SystemResult, aligned, max_abs_error, time_round_robin
from tvm_mobilenet.bench.load import OthersCpu
from tvm_mobilenet.bench.peak import measure_fma_peak
from tvm_mobilenet.bench.peer import Peer, Predict
from tvm_mobilenet.bench.peers.ours import Ours
from tvm_mobilenet.bench.report import BenchReport
from tvm_mobilenet.devices import DeviceSpec, load_device
from tvm_mobilenet.errors import TuningLogError, VerificationError
from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet, ModelSource
from tvm_mobilenet.model.weights import get_weights
from tvm_mobilenet.run.threads import allow_threads
from tvm_mobilenet.tune.log import log_dir_to_read


@dataclass
class BenchArgs:
    config: ModelConfig
    peers: list[str]
    threads: list[int] = field(default_factory=lambda: [1, 2])
    repeat: int = 30
    module: Path | None = (
        None  # None: compile ours now, with the host's default log if it has records
    )
    weights_file: Path | None = None
    seed: int = 0
    tolerance: float = reference.SOFTMAX_TOLERANCE
    precision: str = "fp32"  # int8: the int8 TFLite file of these weights (bench/int8.py)
    int8_multiply: str = "exact"  # how ours multiplies int8 when compiled here (see README, "int8")


def compile_ours(
    model: ModelSource, device: DeviceSpec, output: Path, tolerance: float, print_fn
) -> Path:
    """Our module for `device`, with the records of the device's default log if it has some for
    this model (else untuned); a cross-compiled module is not verified here."""
    from tvm_mobilenet.compile.api import CompileArgs, compile_model

    log_dir = log_dir_to_read(device, model)
    compile_args = CompileArgs(
        model=model,
        device=device,
        output=output,
        log_dir=log_dir,
        log_optional=True,
        tolerance=tolerance,
    )
    try:
        report = compile_model(compile_args, print_fn=lambda line: None)
        source = f"records from {log_dir}" if log_dir.exists() else "untuned: no tuning log"
    except TuningLogError as err:
        print_fn(f"note: not using {log_dir} ({err}); compiling ours untuned")
        compile_args.log_dir = None
        report = compile_model(compile_args, print_fn=lambda line: None)
        source = "untuned"
    print_fn(
        f"compiled ours for {device.label} ({source}; {len(report.untuned)} task(s) without a "
        "record)"
    )
    return compile_args.output


def available_peers(names: list[str], notes: list[str]) -> list[Peer]:
    from tvm_mobilenet.bench.registry import PEERS

    peers = []
    for name in names:
        peer = PEERS[name]()
        reason = peer.available()
        if reason is None:
            peers.append(peer)
        else:
            notes.append(f"{peer.label} skipped: {reason}")
    return peers


def _prepare_and_check(system: Peer, args: BenchArgs, weights, threads: int, data, expected):
    """(predictor or None, result); a peer that fails to build or to match the reference is not
    timed."""
    result = SystemResult(system.name, system.label, threads, "timed", version=system.version())
    try:
        predict = system.prepare(args.config, weights, threads)
        result.max_abs_error = max_abs_error(predict, data, expected)
    except Exception as err:  # a peer's own failure is reported, not fatal
        if isinstance(system, Ours):
            raise
        result.status, result.note = (
            "failed",
            f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200]}",
        )
        return None, result
    if not result.max_abs_error <= args.tolerance:
        result.status = "wrong"
        result.note = (
            f"max abs error {result.max_abs_error:.2e} against the reference > {args.tolerance:g}"
        )
        if isinstance(system, Ours):
            raise VerificationError(
                f"our module: {result.note}; was it built with the same --weights/--seed?"
            )
        return None, result
    return predict, result


def run_benchmark(args: BenchArgs, print_fn: Callable[[str], None] = print) -> BenchReport:
    """Check and time ours and every available peer at each thread count; return the report."""
    if args.precision == "int8":
        from tvm_mobilenet.bench.int8 import run_int8_benchmark

        return run_int8_benchmark(args, print_fn)
    allow_threads(max(args.threads))  # before our module's first call starts TVM's pool
    # Step 1. The model's weights, the fixed input, and the float64 answer every system must give.
    weights = get_weights(args.config, args.weights_file, args.seed)
    data = aligned(reference.sample_input(args.config))
    expected = reference.forward(args.config, weights, data)
    report = BenchReport(args.config, list(args.threads), args.repeat)
    others = OthersCpu()
    peers = available_peers(args.peers, report.notes)
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_bench_") as work_dir:
        # Step 2. Ours: the given .so, or compiled now.
        module = args.module or compile_ours(
            BuiltinMobileNet(args.config, args.weights_file, args.seed),
            load_device("x86"),
            Path(work_dir) / "ours.so",
            args.tolerance,
            print_fn,
        )
        report.notes.append(f"ours: {module if args.module else 'compiled for this run'}")
        ours = Ours(module)
        systems: list[Peer] = [ours, *peers]
        for threads in args.threads:
            # Step 3. Build every system for this thread count and check it.
            predictors: dict[str, Predict] = {}
            for system in systems:
                predict, result = _prepare_and_check(system, args, weights, threads, data, expected)
                report.results.append(result)
                if predict is not None:
                    predictors[system.name] = predict
                detail = result.note or f"max abs error {result.max_abs_error:.1e}"
                print_fn(f"{threads} thread(s): {system.label}: {result.status} ({detail})")
            # Step 4. Time them in turns.
            for name, latencies in time_round_robin(predictors, data, args.repeat).items():
                report.result(name, threads).latencies_ms = latencies
            predictors.clear()
            gc.collect()  # let the peers' sessions and thread pools go before the next thread count
        report.notes.append(
            f"ours: {ours.huge_page_bytes >> 20} MiB of its memory on 2 MB pages "
            "(tvm_mobilenet/run/huge_pages.py; the peers' memory as they allocate it)"
        )
        if ours.strassen_layers:
            report.notes.append(
                f"ours: {ours.strassen_layers} layers run as Strassen kernels, 7/8 of their "
                "multiply-adds; every system's share of the FMA peak counts the model's FLOPs"
            )
    # Step 5. The machine's FMA peak at each thread count, after the timing it must not disturb.
    report.peaks = measure_fma_peak(list(args.threads))
    report.notes.append(others.note())
    return report
