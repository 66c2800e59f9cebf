"""Run a model file in its own framework (ONNX Runtime, the TFLite interpreter, PyTorch) for
checking.

Each runner takes the file and one input array and returns the first output; a missing framework
raises SourceCheckUnavailable naming the package to install.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tvm_mobilenet.errors import ModelImportError, SourceCheckUnavailable, VerificationError

INSTALL_HINT = "pip install 'tvm_mobilenet[frameworks]'"
FORMAT_OF_SUFFIX = {".onnx": "onnx", ".tflite": "tflite", ".pt2": "pt2"}


# Formats whose loader can run code from the file: torch.export.load unpickles parts of a .pt2
# (falling back to unrestricted pickle when the safe loader refuses), so a .pt2 from elsewhere can
# run anything it likes when it is read.
RUNS_CODE = {"pt2"}
TRUST_FLAG = "--trust-model-file"


def model_format(path: Path, trusted: bool = False) -> str:
    """ "onnx", "tflite" or "pt2" from the file's suffix; raises ModelImportError for others, a
    missing file, or a format that can run code when the file is not `trusted`."""
    source_format = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if source_format is None:
        raise ModelImportError(
            f"{path.name}: unknown model format '{path.suffix}'; use one of "
            f"{', '.join(FORMAT_OF_SUFFIX)} (.pt2: a program saved with torch.export.save)"
        )
    if not path.is_file():
        raise ModelImportError(f"model file {path} does not exist")
    if source_format in RUNS_CODE and not trusted:
        raise ModelImportError(
            f"{path.name}: loading a .pt2 file can run code it holds (torch.export.load "
            f"unpickles); pass {TRUST_FLAG} if you trust where it came from, or export the "
            "model to ONNX"
        )
    return source_format


def _unavailable(package: str) -> SourceCheckUnavailable:
    return SourceCheckUnavailable(f"{package} is not installed ({INSTALL_HINT})")


def run_onnx(path: Path, data: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        raise _unavailable("onnxruntime") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: data})[0]


def _tflite_interpreter():
    """(Interpreter class, OpResolverType) of LiteRT, else of TensorFlow."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    except ImportError:
        raise _unavailable("ai-edge-litert (or tensorflow)") from None


# The interpreter whose int8 results each arithmetic reproduces bit for bit (fixed_point.py):
# TFLite's fixed point is its builtin kernels', XNNPACK's fp32 requantization its delegate's.
INT8_RESOLVERS = {
    "tflite": ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", "the TFLite interpreter's builtin kernels"),
    "xnnpack": ("AUTO", "the TFLite interpreter with XNNPACK"),
}


def tflite_interpreter(path: Path, arithmetic: str | None = None, threads: int | None = None):
    """An interpreter of `path`; for int8 files, the one `arithmetic` reproduces."""
    interpreter_class, resolvers = _tflite_interpreter()
    options = {"num_threads": threads} if threads else {}
    if arithmetic is not None:
        resolver = getattr(resolvers, INT8_RESOLVERS[arithmetic][0])
        options["experimental_op_resolver_type"] = resolver
    return interpreter_class(model_path=str(path), **options)


def run_tflite(path: Path, data: np.ndarray, arithmetic: str | None = None) -> np.ndarray:
    interpreter = tflite_interpreter(path, arithmetic)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(data.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_pt2(path: Path, data: np.ndarray) -> np.ndarray:
    try:
        import torch
    except ImportError:
        raise _unavailable("torch") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices about its own pickles
        module = torch.export.load(str(path)).module()
    with torch.no_grad():
        output = module(torch.from_numpy(data))
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output.numpy()


RUNTIMES: dict[str, tuple[str, Callable[[Path, np.ndarray], np.ndarray]]] = {
    "onnx": ("ONNX Runtime", run_onnx),
    "tflite": ("the TFLite interpreter", run_tflite),
    "pt2": ("PyTorch", run_pt2),
}


def run_source(
    source_format: str, path: Path, data: np.ndarray, int8_arithmetic: str | None = None
) -> tuple[str, np.ndarray]:
    """(framework name, output of `path` on `data`) from the file's own framework; an int8 TFLite
    file runs in the interpreter whose arithmetic `int8_arithmetic` reproduces (an int8 QDQ ONNX
    file in ONNX Runtime, whose own requantization our "xnnpack" arithmetic follows); a
    framework that fails on the file is a VerificationError (nothing to check against)."""
    if int8_arithmetic is not None and source_format == "tflite":
        output = run_tflite(path, np.ascontiguousarray(data, dtype=np.int8), int8_arithmetic)
        return INT8_RESOLVERS[int8_arithmetic][1], np.asarray(output)
    name, runner = RUNTIMES[source_format]
    dtype = np.int8 if data.dtype == np.int8 else np.float32  # an int8 QDQ ONNX file's input
    try:
        output = runner(path, np.ascontiguousarray(data, dtype=dtype))
    except SourceCheckUnavailable:
        raise
    except Exception as err:  # each runtime raises its own types (onnxruntime's Fail, ...)
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise VerificationError(
            f"{name} could not run {path.name} ({detail}), so the compiled module cannot be "
            "checked against it"
        ) from None
    return name, np.asarray(output)
