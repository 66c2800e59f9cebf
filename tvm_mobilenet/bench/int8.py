"""`bench --precision int8`: one full-integer TFLite MobileNet (our weights, quantized by
TensorFlow's converter), run by ours (imported and compiled to int8 kernels), by TFLite/XNNPACK
and by ONNX Runtime on its QDQ twin; each checked against the TFLite interpreter, then timed
round-robin.

The answer every system must give is TFLite/XNNPACK's int8 output on the fixed input: within one
quantization step on >= 99 % of elements and the same top-1 (the int8 form of the fp32 bench's
tolerance against the float64 reference).
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from tvm_mobilenet.bench.harness import SystemResult, time_round_robin
from tvm_mobilenet.bench.load import OthersCpu
from tvm_mobilenet.bench.peer import Predict, interpreter_predictor, missing_modules
from tvm_mobilenet.bench.peers.ours import Ours
from tvm_mobilenet.bench.report import BenchReport
from tvm_mobilenet.compile.build import Int8Agreement, int8_agreement
from tvm_mobilenet.errors import SourceCheckUnavailable, VerificationError
from tvm_mobilenet.model import reference
from tvm_mobilenet.model.weights import get_weights
from tvm_mobilenet.run.threads import allow_threads

WITHIN_ONE_STEP = 0.99


def _package_version(*packages: str) -> str:
    for package in packages:
        try:
            return f"{package} {version(package)}"
        except PackageNotFoundError:
            continue
    return "?"


def _tflite_predictor(path: Path, threads: int) -> Predict:
    from tvm_mobilenet.model.frameworks import tflite_interpreter

    return interpreter_predictor(tflite_interpreter(path, "xnnpack", threads))


def _ort_predictor(path: Path, threads: int) -> Predict:
    """ONNX Runtime on the QDQ twin with uint8 activations, the form its quantizer writes: every
    convolution, the pool, the classifier and the softmax run as its int8 kernels. The input's
    and output's int8 <-> uint8 flips (a sign-bit XOR) are timed with it."""
    import onnxruntime

    from tvm_mobilenet.bench.qdq_onnx import INPUT_NAME, as_uint8, from_uint8, tflite_to_qdq_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(
        tflite_to_qdq_onnx(path, activations="uint8").SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    return lambda data: from_uint8(session.run(None, {INPUT_NAME: as_uint8(data)})[0])


# name -> (label, versions to report, modules it needs, predictor of (int8 file, threads))
PEERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], Callable]] = {
    "tflite": (
        "TFLite/XNNPACK",
        ("ai-edge-litert", "tensorflow"),
        ("flatbuffers",),
        _tflite_predictor,
    ),
    "ort": ("ORT int8 QDQ", ("onnxruntime",), ("onnxruntime", "onnx", "tflite"), _ort_predictor),
}


def _write_model(args, weights, work_dir: Path) -> Path:
    try:
        from tvm_mobilenet.bench.int8_tflite import write_int8_tflite

        return write_int8_tflite(args.config, weights, work_dir / "mobilenet_int8.tflite")
    except ImportError as err:
        raise SourceCheckUnavailable(
            f"bench --precision int8 quantizes with TensorFlow's converter: {err} "
            "(pip install '.[frameworks]')"
        ) from None


def _int8_input(path: Path, config) -> np.ndarray:
    """The fp32 bench's fixed input, NHWC, quantized with the file's input parameters."""
    from tvm_mobilenet.model.frameworks import tflite_interpreter

    (details,) = tflite_interpreter(path).get_input_details()
    scale, zero_point = details["quantization"]
    image = reference.sample_input(config).transpose(0, 2, 3, 1)
    return np.clip(np.round(image / scale) + zero_point, -128, 127).astype(np.int8)


def _check(result: SystemResult, agreement: Int8Agreement) -> None:
    result.max_abs_error = float(agreement.max_steps)  # in quantization steps
    if agreement.within_one_step < WITHIN_ONE_STEP or not agreement.top1_equal:
        result.status = "wrong"
        result.note = f"against TFLite/XNNPACK: {agreement.describe()}"


def _systems(args, path: Path, module: Path, input_shape, notes: list[str]) -> dict:
    """name -> (label, version, predictor factory of threads)."""
    ours = Ours(module, input_shape)
    systems = {ours.name: (ours.label, ours.version(), lambda t: ours.prepare(args.config, {}, t))}
    for name in args.peers:
        if name not in PEERS:
            notes.append(
                f"{name} skipped: no int8 path in this benchmark (int8 peers: tflite, ort)"
            )
            continue
        label, packages, modules, predictor = PEERS[name]
        reason = missing_modules(modules)
        if reason is not None:
            notes.append(f"{label} skipped: {reason}")
            continue
        systems[name] = (label, _package_version(*packages), lambda t, p=predictor: p(path, t))
    return systems


def run_int8_benchmark(args, print_fn: Callable[[str], None] = print) -> BenchReport:
    """Check and time ours and the int8 peers on one int8 file (args: api.BenchArgs)."""
    from tvm_mobilenet.bench.api import compile_ours
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.source import ModelFile
    from tvm_mobilenet.schedules.templates import int8_options, with_int8_multiply

    allow_threads(max(args.threads))
    report = BenchReport(args.config, list(args.threads), args.repeat, precision="int8")
    others = OthersCpu()
    weights = get_weights(args.config, args.weights_file, args.seed)
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_bench_int8_") as work:
        path = _write_model(args, weights, Path(work))
        report.notes.append(
            "model: int8 TFLite file of our weights by TFLiteConverter (per-channel weights, "
            "per-tensor activations, calibrated on 8 deterministic synthetic images)"
        )
        device = with_int8_multiply(load_device("x86"), args.int8_multiply)
        model = ModelFile(path, int8=int8_options("x86", device.target))
        module = args.module or compile_ours(
            model, device, Path(work) / "ours.so", args.tolerance, print_fn
        )
        if args.module:
            report.notes.append(f"ours: {module} (as compiled)")
        else:
            report.notes.append(f"ours: compiled for this run ({model.int8.describe()})")
        data = _int8_input(path, args.config)
        expected = _tflite_predictor(path, 1)(data)
        systems = _systems(args, path, module, model.input_shape, report.notes)
        for threads in args.threads:
            predictors: dict[str, Predict] = {}
            for name, (label, system_version, factory) in systems.items():
                result = SystemResult(name, label, threads, "timed", version=system_version)
                predict = factory(threads)
                agreement = int8_agreement(predict(data), expected)
                _check(result, agreement)
                if result.status == "wrong" and name == Ours.name:
                    raise VerificationError(f"our int8 module: {result.note}")
                report.results.append(result)
                if result.status == "timed":
                    predictors[name] = predict
                print_fn(f"{threads} thread(s): {label}: {result.status} ({agreement.describe()})")
            for name, latencies in time_round_robin(predictors, data, args.repeat).items():
                report.result(name, threads).latencies_ms = latencies
            predictors.clear()
            gc.collect()
    report.notes.append(others.note())
    return report
