"""The QDQ ONNX twin of a full-integer TFLite MobileNet: every tensor keeps the file's scale and
zero point, so ONNX Runtime runs the same quantized model (`bench --precision int8`).

Activations are int8 per tensor (QuantizeLinear where produced, DequantizeLinear where read);
weights are the file's int8 values dequantized per output channel; biases its int32 values with
scale s_in * s_w. CONV_2D / DEPTHWISE_CONV_2D become Conv, AVERAGE_POOL_2D AveragePool,
FULLY_CONNECTED Flatten + Gemm, SOFTMAX Softmax; a fused ReLU / ReLU6 is a Clip in float before the
output's QuantizeLinear. ONNX Runtime fuses DQ -> op -> Q into its int8 kernels (QLinearConv, ...).
The graph takes the file's int8 NHWC input (transposed to NCHW in int8) and returns its int8 output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

INPUT_NAME = "input"
# uint8 storage of an int8 value: value + 128, zero point + 128 (the same real numbers)
UINT8_OFFSET = 128
FUSED_RELU, FUSED_RELU6 = 1, 3  # tflite.ActivationFunctionType


class QdqConversionError(ValueError):
    """The file holds an operator this converter does not translate."""


def _same_pads(in_size: int, kernel: int, stride: int) -> list[int]:
    """ONNX pads (top, left, bottom, right) of TF's "same" padding on a square input."""
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - in_size, 0)
    return [total // 2, total // 2, total - total // 2, total - total // 2]


@dataclass
class _Graph:
    """The flatbuffer being read and the ONNX nodes and initializers being written."""

    model: object
    subgraph: object
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    uint8: bool = False  # activations held as uint8 (value + 128, zero point + 128)

    def const(self, name: str, value) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def qparams(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        quantization = self.subgraph.Tensors(index).Quantization()
        return quantization.ScaleAsNumpy().astype(np.float32), quantization.ZeroPointAsNumpy()

    def shape(self, index: int) -> list[int]:
        return self.subgraph.Tensors(index).ShapeAsNumpy().tolist()

    def buffer(self, index: int, dtype) -> np.ndarray:
        tensor = self.subgraph.Tensors(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(data.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())

    def zero_point(self, index: int) -> np.ndarray:
        """Activation `index`'s zero point in its storage type."""
        zero_point = int(self.qparams(index)[1][0])
        return np.uint8(zero_point + UINT8_OFFSET) if self.uint8 else np.int8(zero_point)

    def dequantized(self, index: int, stored: str | None = None) -> str:
        """The float view of quantized activation `index` (held in `stored`, default its own)."""
        scale, _ = self.qparams(index)
        return self.node(
            "DequantizeLinear",
            [
                stored or f"t{index}_q",
                self.const(f"t{index}_s", scale[0]),
                self.const(f"t{index}_z", self.zero_point(index)),
            ],
            f"{stored or f't{index}_q'}_dq",
        )

    def quantize_to(self, value: str, index: int, fused: int = 0) -> None:
        """QuantizeLinear `value` into activation `index`, after its fused activation's clip."""
        scale, _ = self.qparams(index)
        low = {FUSED_RELU: 0.0, FUSED_RELU6: 0.0}.get(fused)
        if low is not None:
            high = 6.0 if fused == FUSED_RELU6 else np.finfo(np.float32).max
            value = self.node(
                "Clip",
                [
                    value,
                    self.const(f"{value}_lo", np.float32(low)),
                    self.const(f"{value}_hi", np.float32(high)),
                ],
                f"{value}_clip",
            )
        self.node(
            "QuantizeLinear",
            [
                value,
                self.const(f"t{index}_qs", scale[0]),
                self.const(f"t{index}_qz", self.zero_point(index)),
            ],
            f"t{index}_q",
        )

    def dequantized_weights(
        self, op_index: int, weight: np.ndarray, inputs: list[int]
    ) -> list[str]:
        """(weight, bias) as float: int8 weights per output channel (axis 0), int32 bias."""
        weight_scale, _ = self.qparams(inputs[1])
        input_scale, _ = self.qparams(inputs[0])
        bias = self.buffer(inputs[2], np.int32)
        w = self.node(
            "DequantizeLinear",
            [
                self.const(f"w{op_index}", weight),
                self.const(f"w{op_index}_s", weight_scale),
                self.const(f"w{op_index}_z", np.zeros(len(weight_scale), np.int8)),
            ],
            f"w{op_index}_dq",
            axis=0,
        )
        b = self.node(
            "DequantizeLinear",
            [
                self.const(f"b{op_index}", bias),
                self.const(f"b{op_index}_s", (input_scale[0] * weight_scale).astype(np.float32)),
                self.const(f"b{op_index}_z", np.zeros(len(bias), np.int32)),
            ],
            f"b{op_index}_dq",
            axis=0,
        )
        return [w, b]


def _options(op, options_class):
    options, table = options_class(), op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return options


def _convolution(graph: _Graph, op_index: int, op, depthwise: bool) -> None:
    from tflite.Conv2DOptions import Conv2DOptions
    from tflite.DepthwiseConv2DOptions import DepthwiseConv2DOptions
    from tflite.Padding import Padding

    options = _options(op, DepthwiseConv2DOptions if depthwise else Conv2DOptions)
    inputs, output = op.InputsAsNumpy().tolist(), int(op.OutputsAsNumpy()[0])
    weight = graph.buffer(inputs[1], np.int8)  # depthwise 1HWC, else OHWI
    weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)  # OIHW
    kernel, stride = weight.shape[2], options.StrideH()
    pads = [0] * 4
    if options.Padding() == Padding.SAME:
        pads = _same_pads(graph.shape(inputs[0])[1], kernel, stride)
    conv = graph.node(
        "Conv",
        [graph.dequantized(inputs[0]), *graph.dequantized_weights(op_index, weight, inputs)],
        f"y{op_index}",
        strides=[stride, stride],
        pads=pads,
        group=weight.shape[0] if depthwise else 1,
    )
    graph.quantize_to(conv, output, options.FusedActivationFunction())


def _operator(graph: _Graph, op_index: int, op, kind: str) -> None:
    from tflite.Pool2DOptions import Pool2DOptions

    inputs, output = op.InputsAsNumpy().tolist(), int(op.OutputsAsNumpy()[0])
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        _convolution(graph, op_index, op, kind == "DEPTHWISE_CONV_2D")
    elif kind == "AVERAGE_POOL_2D":
        options = _options(op, Pool2DOptions)
        pool = graph.node(
            "AveragePool",
            [graph.dequantized(inputs[0])],
            f"y{op_index}",
            kernel_shape=[options.FilterHeight(), options.FilterWidth()],
            strides=[options.StrideH(), options.StrideW()],
        )
        graph.quantize_to(pool, output)
    elif kind == "FULLY_CONNECTED":
        # Flattened while quantized, so DequantizeLinear feeds Gemm directly: the pattern ONNX
        # Runtime fuses into its int8 QGemm (a float Flatten in between leaves a float Gemm that
        # dequantizes its 4 MB of weights on every call).
        flat = graph.node("Flatten", [f"t{inputs[0]}_q"], f"x{op_index}_flat_q")
        flat = graph.dequantized(inputs[0], stored=flat)
        weight = graph.buffer(inputs[1], np.int8)  # (units, in)
        gemm = graph.node(
            "Gemm",
            [flat, *graph.dequantized_weights(op_index, weight, inputs)],
            f"y{op_index}",
            transB=1,
        )
        graph.quantize_to(gemm, output)
    elif kind == "SOFTMAX":
        softmax = graph.node("Softmax", [graph.dequantized(inputs[0])], f"y{op_index}", axis=-1)
        graph.quantize_to(softmax, output)
    elif kind == "RESHAPE":
        graph.node("Identity", [f"t{inputs[0]}_q"], f"t{output}_q")
    else:
        raise QdqConversionError(f"operator {kind} has no QDQ ONNX translation here")


def tflite_to_qdq_onnx(path: Path, activations: str = "int8"):
    """The onnx.ModelProto of the int8 TFLite file at `path` (NHWC in, int8 out).

    `activations` "uint8" stores every activation, the input and the output too, as uint8
    (`as_uint8`, `from_uint8`): the form ONNX Runtime's own quantizer writes, and what its x86
    int8 kernels multiply (u8 x s8). From int8 activations it converts the pairs it can to uint8
    itself, but keeps the first convolution (its int8 graph input) and the classifier in float."""
    import onnx
    import tflite
    from onnx import TensorProto, helper
    from tflite.BuiltinOperator import BuiltinOperator

    model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    graph = _Graph(model, model.Subgraphs(0), uint8=activations == "uint8")
    names = {code: name for name, code in vars(BuiltinOperator).items() if name.isupper()}
    input_index = int(graph.subgraph.InputsAsNumpy()[0])
    storage = TensorProto.UINT8 if graph.uint8 else TensorProto.INT8
    graph.node("Transpose", [INPUT_NAME], f"t{input_index}_q", perm=[0, 3, 1, 2])
    for op_index in range(graph.subgraph.OperatorsLength()):
        op = graph.subgraph.Operators(op_index)
        code = model.OperatorCodes(op.OpcodeIndex())
        _operator(graph, op_index, op, names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    output_index = int(graph.subgraph.OutputsAsNumpy()[0])
    onnx_graph = helper.make_graph(
        graph.nodes,
        "mobilenet_v1_int8_qdq",
        [helper.make_tensor_value_info(INPUT_NAME, storage, graph.shape(input_index))],
        [helper.make_tensor_value_info(f"t{output_index}_q", storage, graph.shape(output_index))],
        graph.initializers,
    )
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model


def as_uint8(data: np.ndarray) -> np.ndarray:
    """int8 values in uint8 storage (value + 128: the sign bit flipped)."""
    return data.view(np.uint8) ^ np.uint8(UINT8_OFFSET)


def from_uint8(data: np.ndarray) -> np.ndarray:
    """uint8-stored values back to int8."""
    return (data ^ np.uint8(UINT8_OFFSET)).view(np.int8)
