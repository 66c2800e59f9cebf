"""MobileNet v1 as a .tflite flatbuffer, written directly from our weights (BN folded).

No TensorFlow converter is needed: the `tflite` package's generated schema code writes the file.
The graph takes the same NCHW input as every other system and transposes it to TFLite's NHWC first;
TFLite's SAME padding is TF's, as in `network.same_padding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers
from tvm_mobilenet.model.weights import fold_batchnorm

SCHEMA_VERSION = 3
BUFFER_ALIGNMENT = 16  # weights are used in place: keep them SIMD-aligned


@dataclass
class _Graph:
    """Tensors, buffers and operators collected before they are serialised."""

    tensors: list[tuple[str, tuple[int, ...], int, int]] = field(
        default_factory=list
    )  # name, shape, type, buffer
    buffers: list[bytes] = field(default_factory=lambda: [b""])  # buffer 0 is the empty sentinel
    operators: list[tuple[int, list[int], list[int], int, object]] = field(default_factory=list)
    opcodes: list[int] = field(default_factory=list)

    def tensor(
        self, name: str, shape, data: np.ndarray | None = None, tensor_type: int | None = None
    ) -> int:
        import tflite

        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buffer = len(self.buffers) - 1
        if tensor_type is None:
            tensor_type = (
                tflite.TensorType.INT32
                if data is not None and data.dtype == np.int32
                else tflite.TensorType.FLOAT32
            )
        self.tensors.append((name, tuple(int(d) for d in shape), tensor_type, buffer))
        return len(self.tensors) - 1

    def operator(
        self, opcode: int, inputs: list[int], outputs: list[int], options_type: int, options
    ) -> None:
        """`options(builder) -> offset` writes the operator's options table."""
        if opcode not in self.opcodes:
            self.opcodes.append(opcode)
        self.operators.append((self.opcodes.index(opcode), inputs, outputs, options_type, options))


def _conv_options(layer: Layer):
    import tflite

    if layer.kind == "depthwise":

        def write(builder):
            tflite.DepthwiseConv2DOptionsStart(builder)
            tflite.DepthwiseConv2DOptionsAddPadding(builder, tflite.Padding.SAME)
            tflite.DepthwiseConv2DOptionsAddStrideW(builder, layer.stride)
            tflite.DepthwiseConv2DOptionsAddStrideH(builder, layer.stride)
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(builder, 1)
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(
                builder, tflite.ActivationFunctionType.RELU
            )
            return tflite.DepthwiseConv2DOptionsEnd(builder)

        return (
            tflite.BuiltinOperator.DEPTHWISE_CONV_2D,
            tflite.BuiltinOptions.DepthwiseConv2DOptions,
            write,
        )

    def write(builder):
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, tflite.Padding.SAME)
        tflite.Conv2DOptionsAddStrideW(builder, layer.stride)
        tflite.Conv2DOptionsAddStrideH(builder, layer.stride)
        tflite.Conv2DOptionsAddFusedActivationFunction(builder, tflite.ActivationFunctionType.RELU)
        return tflite.Conv2DOptionsEnd(builder)

    return tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOptions.Conv2DOptions, write


def _empty_options(start, end):
    return lambda builder: (start(builder), end(builder))[1]


def _collect(config: ModelConfig, weights: dict[str, np.ndarray]) -> _Graph:
    import tflite

    graph = _Graph()
    batch, size = config.batch, config.resolution
    nchw = graph.tensor("data", config.input_shape)
    x = graph.tensor("data_nhwc", (batch, size, size, 3))
    perm = graph.tensor("nhwc_perm", (4,), np.array([0, 2, 3, 1], np.int32))
    graph.operator(
        tflite.BuiltinOperator.TRANSPOSE,
        [nchw, perm],
        [x],
        tflite.BuiltinOptions.TransposeOptions,
        _empty_options(tflite.TransposeOptionsStart, tflite.TransposeOptionsEnd),
    )
    for layer in layers(config):
        if layer.has_batchnorm:
            weight, bias = fold_batchnorm(layer, weights)
            # OIHW -> OHWI (conv), or (C,1,H,W) -> (1,H,W,C) (depthwise)
            kernel = (
                weight.transpose(1, 2, 3, 0)
                if layer.kind == "depthwise"
                else weight.transpose(0, 2, 3, 1)
            )
            w = graph.tensor(f"{layer.name}.w", kernel.shape, kernel)
            b = graph.tensor(f"{layer.name}.b", bias.shape, bias)
            out = graph.tensor(
                layer.name, (batch, layer.out_size, layer.out_size, layer.out_channels)
            )
            opcode, options_type, options = _conv_options(layer)
            graph.operator(opcode, [x, w, b], [out], options_type, options)
        elif layer.kind == "avgpool":
            axes = graph.tensor("mean_axes", (2,), np.array([1, 2], np.int32))
            out = graph.tensor(layer.name, (batch, layer.out_channels))
            graph.operator(
                tflite.BuiltinOperator.MEAN,
                [x, axes],
                [out],
                tflite.BuiltinOptions.ReducerOptions,
                _empty_options(tflite.ReducerOptionsStart, tflite.ReducerOptionsEnd),
            )  # keep_dims False
        else:  # fc
            weight, bias = fold_batchnorm(layer, weights)
            w = graph.tensor("fc.w", weight.shape, weight)
            b = graph.tensor("fc.b", bias.shape, bias)
            out = graph.tensor(layer.name, (batch, layer.out_channels))
            graph.operator(
                tflite.BuiltinOperator.FULLY_CONNECTED,
                [x, w, b],
                [out],
                tflite.BuiltinOptions.FullyConnectedOptions,
                _empty_options(tflite.FullyConnectedOptionsStart, tflite.FullyConnectedOptionsEnd),
            )
        x = out
    probabilities = graph.tensor("probabilities", (batch, layers(config)[-1].out_channels))

    def softmax_options(builder):
        tflite.SoftmaxOptionsStart(builder)
        tflite.SoftmaxOptionsAddBeta(builder, 1.0)
        return tflite.SoftmaxOptionsEnd(builder)

    graph.operator(
        tflite.BuiltinOperator.SOFTMAX,
        [x],
        [probabilities],
        tflite.BuiltinOptions.SoftmaxOptions,
        softmax_options,
    )
    graph.inputs, graph.outputs = [nchw], [probabilities]
    return graph


def _vector(builder, start, items, prepend) -> int:
    start(builder, len(items))
    for item in reversed(items):
        prepend(item)
    return builder.EndVector()


def _aligned_bytes(builder, data: bytes) -> int:
    builder.StartVector(1, len(data), BUFFER_ALIGNMENT)
    builder.head -= len(data)
    builder.Bytes[builder.head : builder.head + len(data)] = data
    return builder.EndVector()


def _buffers(builder, tflite, graph: _Graph) -> list[int]:
    buffers = []
    for data in graph.buffers:
        payload = _aligned_bytes(builder, data) if data else None
        tflite.BufferStart(builder)
        if payload is not None:
            tflite.BufferAddData(builder, payload)
        buffers.append(tflite.BufferEnd(builder))
    return buffers


def _tensors(builder, tflite, graph: _Graph) -> list[int]:
    tensors = []
    for name, shape, tensor_type, buffer in graph.tensors:
        name_offset = builder.CreateString(name)
        shape_offset = _vector(builder, tflite.TensorStartShapeVector, shape, builder.PrependInt32)
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape_offset)
        tflite.TensorAddType(builder, tensor_type)
        tflite.TensorAddBuffer(builder, buffer)
        tflite.TensorAddName(builder, name_offset)
        tensors.append(tflite.TensorEnd(builder))
    return tensors


def _operators(builder, tflite, graph: _Graph) -> list[int]:
    operators = []
    for opcode_index, inputs, outputs, options_type, options in graph.operators:
        inputs_offset = _vector(
            builder, tflite.OperatorStartInputsVector, inputs, builder.PrependInt32
        )
        outputs_offset = _vector(
            builder, tflite.OperatorStartOutputsVector, outputs, builder.PrependInt32
        )
        options_offset = options(builder)
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, opcode_index)
        tflite.OperatorAddInputs(builder, inputs_offset)
        tflite.OperatorAddOutputs(builder, outputs_offset)
        tflite.OperatorAddBuiltinOptionsType(builder, options_type)
        tflite.OperatorAddBuiltinOptions(builder, options_offset)
        operators.append(tflite.OperatorEnd(builder))
    return operators


def _subgraph(builder, tflite, graph: _Graph) -> int:
    subgraph_parts = (
        (
            tflite.SubGraphStartTensorsVector,
            _tensors(builder, tflite, graph),
            builder.PrependUOffsetTRelative,
        ),
        (tflite.SubGraphStartInputsVector, graph.inputs, builder.PrependInt32),
        (tflite.SubGraphStartOutputsVector, graph.outputs, builder.PrependInt32),
        (
            tflite.SubGraphStartOperatorsVector,
            _operators(builder, tflite, graph),
            builder.PrependUOffsetTRelative,
        ),
    )
    tensors_vec, inputs_vec, outputs_vec, operators_vec = (
        _vector(builder, *part) for part in subgraph_parts
    )
    name = builder.CreateString("main")
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensors_vec)
    tflite.SubGraphAddInputs(builder, inputs_vec)
    tflite.SubGraphAddOutputs(builder, outputs_vec)
    tflite.SubGraphAddOperators(builder, operators_vec)
    tflite.SubGraphAddName(builder, name)
    return tflite.SubGraphEnd(builder)


def _opcodes(builder, tflite, graph: _Graph) -> list[int]:
    opcodes = []
    for code in graph.opcodes:
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, code)
        tflite.OperatorCodeAddVersion(builder, 1)
        opcodes.append(tflite.OperatorCodeEnd(builder))
    return opcodes


def _serialise(graph: _Graph) -> bytes:
    import flatbuffers
    import tflite

    builder = flatbuffers.Builder(sum(len(b) for b in graph.buffers) + (1 << 16))
    buffers = _buffers(builder, tflite, graph)
    subgraph = _subgraph(builder, tflite, graph)
    opcodes_vec = _vector(
        builder,
        tflite.ModelStartOperatorCodesVector,
        _opcodes(builder, tflite, graph),
        builder.PrependUOffsetTRelative,
    )
    subgraphs_vec = _vector(
        builder, tflite.ModelStartSubgraphsVector, [subgraph], builder.PrependUOffsetTRelative
    )
    buffers_vec = _vector(
        builder, tflite.ModelStartBuffersVector, buffers, builder.PrependUOffsetTRelative
    )
    description = builder.CreateString("tvm_mobilenet MobileNet v1")
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, SCHEMA_VERSION)
    tflite.ModelAddOperatorCodes(builder, opcodes_vec)
    tflite.ModelAddSubgraphs(builder, subgraphs_vec)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, buffers_vec)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def build_tflite(config: ModelConfig, weights: dict[str, np.ndarray]) -> bytes:
    """The contents of a .tflite file: NCHW float32 `data` in, softmax `probabilities` out."""
    return _serialise(_collect(config, weights))
