"""Import a model file (.onnx, .tflite, or a torch.export program saved as .pt2) into Relax.

One function per format behind `load_model_file`. Each reads the single float32 input's name, shape
and layout from the file (or takes the shape given), and returns a Relax module normalised like the
built-in MobileNet (normalize.py: NHWC convolutions, BatchNorm folded), so `tasks.extract_tasks`
labels them depthwise / pointwise and the same templates apply.

A quantized TFLite file (int8 input, what TFLiteConverter writes with TFLITE_BUILTINS_INT8) is
rewritten into integer arithmetic (quantized.py) with the given `Int8Options`: its tasks are int8
depthwise / pointwise convolutions. An ONNX QDQ file takes the same path after qdq.py has brought
the ONNX frontend's graph into the TFLite frontend's form.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tvm

from tvm_mobilenet.errors import IntegerizeError, ModelImportError
from tvm_mobilenet.model.captured_output import captured_output
from tvm_mobilenet.model.frameworks import INSTALL_HINT, model_format
from tvm_mobilenet.model.normalize import normalize
from tvm_mobilenet.model.qdq import to_tflite_form
from tvm_mobilenet.model.quantized import Int8Options, integerize, is_quantized

# TFLite operators the int8 rewrite turns into integer arithmetic (or keeps, for the final softmax).
INT8_TFLITE_OPERATORS = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "SOFTMAX",
    "RESHAPE",
    "QUANTIZE",
    "DEQUANTIZE",
}


@dataclass(frozen=True)
class ImportedModel:
    """A model file as a Relax module: `main(<input>)` -> the file's output."""

    mod: tvm.IRModule
    input_name: str
    input_shape: tuple[int, ...]  # in the file's layout: what the compiled module's main takes
    layout: str  # layout of that input: "NCHW" or "NHWC"
    source_format: str  # one of LOADERS' keys: onnx, tflite, pt2
    input_dtype: str = "float32"  # "int8" for a full-integer TFLite file
    int8: Int8Options | None = None  # how a quantized model was made integer (None: float model)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def guess_layout(shape) -> str:
    """NHWC if the last axis looks like channels (1 or 3) and the second does not, else NCHW."""
    if len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3):
        return "NHWC"
    return "NCHW"


def _resolve_shape(
    path: Path, name: str, file_shape: list, given: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The input shape: `given` if any (its rank must match), else the file's, which must be
    static."""
    shown = "[" + ", ".join(str(d) for d in file_shape) + "]"
    if given is not None:
        if len(given) != len(file_shape):
            raise ModelImportError(
                f"{path.name}: --input-shape has {len(given)} dimensions but input '{name}' "
                f"has {len(file_shape)} {shown}"
            )
        return tuple(given)
    if any(not isinstance(d, int) or d <= 0 for d in file_shape):
        example = ",".join(str(d) if isinstance(d, int) and d > 0 else "1" for d in file_shape)
        raise ModelImportError(
            f"{path.name}: input '{name}' has a dynamic shape {shown}; give it with "
            f"--input-shape (e.g. --input-shape {example}, in the file's own layout)"
        )
    return tuple(file_shape)


def _one_input(path: Path, names: list[str]) -> str:
    if len(names) != 1:
        raise ModelImportError(
            f"{path.name}: expected one input, found {len(names)} ({', '.join(names)}); "
            "only single-image classifiers are supported"
        )
    return names[0]


def _unsupported(path: Path, operators: str) -> ModelImportError:
    return ModelImportError(
        f"{path.name}: unsupported operator {operators} "
        f"(TVM {tvm.__version__}'s Relax frontend cannot convert it)"
    )


def _missing(path: Path, package: str) -> ModelImportError:
    return ModelImportError(
        f"cannot read {path.name}: the Python package '{package}' is not installed ({INSTALL_HINT})"
    )


# ---------------------------------------------------------------------------- ONNX


def _onnx_dims(value_info) -> list:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value_info.type.tensor_type.shape.dim
    ]


def load_onnx(
    path: Path, input_shape: tuple[int, ...] | None, int8: Int8Options | None = None
) -> ImportedModel:
    """A float32 ONNX model, or a QDQ one (QuantizeLinear / DequantizeLinear around float ops;
    float32 or int8 input), made integer with `int8` (default: Int8Options()) through qdq.py's
    normalization to the TFLite form."""
    try:
        import onnx
    except ImportError:
        raise _missing(path, "onnx") from None
    from google.protobuf.message import DecodeError
    from tvm.relax.frontend.onnx import from_onnx

    try:
        model = onnx.load(str(path))
    except (DecodeError, RuntimeError, ValueError, OSError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelImportError(
            f"{path.name} is not a readable ONNX model (truncated or another kind of file: "
            f"{detail})"
        ) from None
    if model.ir_version < 3 or not model.graph.node:
        raise ModelImportError(
            f"{path.name} is not an ONNX model (no graph in it; truncated or another kind of file)"
        )
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    name = _one_input(path, [i.name for i in inputs])
    dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8"}.get(
        inputs[0].type.tensor_type.elem_type
    )
    if dtype is None:
        raise ModelImportError(
            f"{path.name}: input '{name}' is neither float32 nor int8; only float32 models and "
            "QDQ int8 models are supported"
        )
    shape = _resolve_shape(path, name, _onnx_dims(inputs[0]), input_shape)
    unsupported = _onnx_unsupported_ops(model)
    if unsupported:
        raise _unsupported(path, ", ".join(unsupported))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # onnx.checker's complaints come back as errors below if they matter
        mod = from_onnx(model, shape_dict={name: list(shape)}, dtype_dict={name: dtype})
    int8 = (int8 or Int8Options()) if is_quantized(mod) else None
    if int8 is not None:
        mod = _integerized_qdq(path, mod, int8)
    return ImportedModel(mod, name, shape, guess_layout(shape), "onnx", dtype, int8)


def _integerized_qdq(path: Path, mod, int8: Int8Options):
    """A QDQ graph in integer arithmetic; IntegerizeError names what it cannot rewrite (rather
    than running the file as float)."""
    try:
        return integerize(to_tflite_form(mod), int8)[0]
    except IntegerizeError as err:
        raise IntegerizeError(f"{path.name}: {err} (int8 ONNX files are QDQ MobileNets)") from None


def _onnx_unsupported_ops(model) -> list[str]:
    """Operator types the frontend has no converter for (it would name them only after parsing)."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = set(_get_convert_map()) | {"Constant", "If"}  # the two the importer handles itself
    return sorted({node.op_type for node in model.graph.node} - known)


# ---------------------------------------------------------------------------- TFLite

TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier at bytes 4..8


def _tflite_model(path: Path):
    try:
        import tflite
    except ImportError:
        raise _missing(path, "tflite") from None
    buf = path.read_bytes()
    if buf[4:8] != TFLITE_IDENTIFIER:
        raise ModelImportError(f"{path.name} is not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        _touch_tflite(model)
    except Exception:  # flatbuffers reads past the end of a truncated buffer in many ways
        raise ModelImportError(f"{path.name} is a truncated or damaged TFLite model") from None
    return model


def _touch_tflite(model) -> None:
    """Read every table and buffer once, so a truncated file fails here and not in the frontend."""
    if model.SubgraphsLength() < 1:
        raise ValueError("no subgraph")
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            tensor.ShapeAsNumpy(), tensor.Name(), tensor.Buffer()
        for o in range(subgraph.OperatorsLength()):
            subgraph.Operators(o).InputsAsNumpy()
    for b in range(model.BuffersLength()):
        buffer = model.Buffers(b)
        if buffer.Offset() > 1:
            raise ValueError("external buffers are not supported")
        if not buffer.DataIsNone():
            buffer.DataAsNumpy().sum()


def load_tflite(
    path: Path, input_shape: tuple[int, ...] | None, int8: Int8Options | None = None
) -> ImportedModel:
    from tflite.TensorType import TensorType
    from tvm.relax.frontend.tflite import from_tflite

    from tvm_mobilenet.model.tflite_shapes import StaticShapeConverter

    model = _tflite_model(path)
    subgraph = model.Subgraphs(0)
    name = _one_input(path, [subgraph.Tensors(i).Name().decode() for i in subgraph.InputsAsNumpy()])
    tensor = subgraph.Tensors(int(subgraph.InputsAsNumpy()[0]))
    dtype = {TensorType.FLOAT32: "float32", TensorType.INT8: "int8"}.get(tensor.Type())
    if dtype is None:
        raise ModelImportError(
            f"{path.name}: input '{name}' is neither float32 nor int8; only float32 models and "
            "full-integer int8 models are supported"
        )
    signature = (
        tensor.ShapeSignatureAsNumpy()
        if not tensor.ShapeSignatureIsNone()
        else tensor.ShapeAsNumpy()
    )
    shape = _resolve_shape(path, name, [int(d) if d > 0 else "?" for d in signature], input_shape)
    operators = _tflite_operators(model)
    unsupported = _tflite_unsupported_ops(model, operators)
    if unsupported:
        raise _unsupported(path, ", ".join(unsupported))
    # The shape is static now (given or the file's): shape computations fold to constants.
    mod = from_tflite(
        model,
        shape_dict={name: shape},
        dtype_dict={name: dtype},
        op_converter=StaticShapeConverter,
    )
    quantized = is_quantized(mod)
    if quantized:
        mod = _integerized(path, mod, operators, int8 or Int8Options())
    layout = "NHWC" if len(shape) == 4 else guess_layout(shape)
    return ImportedModel(
        mod, name, shape, layout, "tflite", dtype, (int8 or Int8Options()) if quantized else None
    )


def _integerized(path: Path, mod, operators: set[str], int8: Int8Options):
    """The quantized graph in integer arithmetic; IntegerizeError names what it cannot rewrite."""
    other = sorted(operators - INT8_TFLITE_OPERATORS)
    if other:
        raise IntegerizeError(
            f"{path.name}: unsupported quantized operator {', '.join(other)} (int8 models may "
            f"use {', '.join(sorted(INT8_TFLITE_OPERATORS))})"
        )
    try:
        return integerize(mod, int8)[0]
    except IntegerizeError as err:
        raise IntegerizeError(f"{path.name}: {err}") from None


def _tflite_operators(model) -> set[str]:
    """The file's operators by name; custom operators as "CUSTOM 'code'"."""
    from tflite.BuiltinOperator import BuiltinOperator

    names = {code: name for name, code in vars(BuiltinOperator).items() if name.isupper()}
    operators = set()
    for index in range(model.OperatorCodesLength()):
        op_code = model.OperatorCodes(index)
        code = max(op_code.DeprecatedBuiltinCode(), op_code.BuiltinCode())
        if code == BuiltinOperator.CUSTOM:
            operators.add(f"CUSTOM '{op_code.CustomCode().decode(errors='replace')}'")
        else:
            operators.add(names.get(code, f"#{code}"))
    return operators


def _tflite_unsupported_ops(model, operators: set[str]) -> list[str]:
    """Operators the frontend has no converter for; custom operators by their custom code."""
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    known = OperatorConverter(model, model.Subgraphs(0), None, None).convert_map
    return sorted(op for op in operators if op.startswith("CUSTOM") or op not in known)


def _operators_named_in(message: str) -> str:
    """'A', 'B' out of the frontend's "The following operators are not supported ...: 'A', 'B'"."""
    first = message.strip().splitlines()[0]
    return first.split(":", 1)[1].strip() if ":" in first else first


# ---------------------------------------------------------------------------- PyTorch (.pt2)


def load_pt2(path: Path, input_shape: tuple[int, ...] | None, int8=None) -> ImportedModel:
    """A float32 torch.export program (`int8` is unused)."""
    try:
        import torch
    except ImportError:
        raise _missing(path, "torch") from None
    from tvm.relax.frontend.torch import from_exported_program

    unreadable = ModelImportError(
        f"{path.name} is not a readable torch.export program (.pt2): truncated or "
        "another kind of file (save one with torch.export.save)"
    )
    if not zipfile.is_zipfile(path):  # before torch, which logs a traceback for these
        raise unreadable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation notices about its own pickles
            program = torch.export.load(str(path))
    except Exception:  # zipfile, pickle and torch errors for damaged or foreign files
        raise unreadable from None
    user_inputs = [
        node
        for node in program.graph.nodes
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs
    ]
    name = _one_input(path, [node.name for node in user_inputs])
    value = user_inputs[0].meta.get("val")
    if value is None or value.dtype != torch.float32:
        raise ModelImportError(
            f"{path.name}: input '{name}' is not float32; only float32 models are supported"
        )
    file_shape = [int(d) if isinstance(d, int) else str(d) for d in value.shape]
    shape = _resolve_shape(path, name, file_shape, input_shape)
    if any(isinstance(d, str) for d in file_shape):
        program = _specialize(program, shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation notices from its decompositions
            mod = from_exported_program(program, unwrap_unit_return_tuple=True)
    except AssertionError as err:
        if "Unsupported function types" not in str(err):
            raise
        operators = str(err).split("Unsupported function types", 1)[1].strip(" []\n")
        raise _unsupported(path, operators.replace("'", "")) from None
    return ImportedModel(mod, name, shape, guess_layout(shape), "pt2")


def _specialize(program, shape):
    """Re-export a dynamic-shape program at a fixed input shape (Relax schedules static shapes)."""
    import torch

    return torch.export.export(program.module(), (torch.zeros(shape),))


# ---------------------------------------------------------------------------- dispatch

LOADERS: dict[str, Callable[..., ImportedModel]] = {
    "onnx": load_onnx,
    "tflite": load_tflite,
    "pt2": load_pt2,
}


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' -> (1, 3, 224, 224)."""
    try:
        shape = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ModelImportError(
            f"--input-shape '{text}' is not a list of positive integers like 1,3,224,224"
        )
    return shape


def load_model_file(
    path: str | Path,
    input_shape: tuple[int, ...] | None = None,
    int8: Int8Options | None = None,
    trusted: bool = False,
) -> ImportedModel:
    """Import `path` by its suffix; raises ModelImportError naming what is wrong with the file, in
    one line (what the frontend printed on the way is captured, and shown only on success).

    A quantized (int8) TFLite file is made integer with `int8` (default: Int8Options()); a .pt2
    is read only if `trusted` (loading one can run code)."""
    path = Path(path)
    source_format = model_format(path, trusted)
    with captured_output() as output:
        imported, failure = _run_loader(path, input_shape, source_format, int8)
        gc.collect()  # a failed frontend's BlockBuilder logs when destroyed: let it log here
    if failure is not None:
        raise failure
    output.replay()
    if imported.int8 is not None:  # integerize made it NHWC integer arithmetic already
        return imported
    return dataclasses.replace(imported, mod=normalize(imported.mod))


def _run_loader(
    path: Path,
    input_shape: tuple[int, ...] | None,
    source_format: str,
    int8: Int8Options | None,
) -> tuple[ImportedModel | None, ModelImportError | None]:
    """(the import, None) or (None, the failure). The failure is returned, not raised, and keeps
    no traceback or context: those would keep the frontend's frames, and its BlockBuilder, alive
    until after the capture."""
    try:
        return LOADERS[source_format](path, input_shape, int8), None
    except ModelImportError as err:
        failure = err
    except tvm.error.OpNotImplemented as err:
        failure = _unsupported(path, _operators_named_in(str(err)))
    except Exception as err:  # the frontends fail in their own ways on graphs they cannot convert
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        failure = ModelImportError(f"{path.name}: TVM's {source_format} importer failed: {detail}")
    failure.__context__ = failure.__cause__ = None
    return None, failure.with_traceback(None)
