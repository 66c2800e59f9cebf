"""MobileNet v1 in Relax: float32, BatchNorm folded into the convolutions' weights and biases.

The module takes NCHW input (as the paper, PyTorch and ONNX do) and computes in NHWC: with channels
innermost, depthwise and pointwise convolutions both load and store unit-stride vectors of channels
(SIMD lanes on CPUs, float4 on GPUs), and every MobileNet channel count is a multiple of 8 for
alpha >= 0.25, while the spatial sizes (112 ... 7) are not. Weights are pre-packed to match:
HWIO for full and pointwise convolutions (output channels contiguous), HWOI for depthwise."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers
from tvm_mobilenet.model.weights import fold_batchnorm


def same_padding(layer: Layer) -> tuple[int, int, int, int]:
    """TF "same" padding (top, left, bottom, right); matches `reference._pad`."""
    total = max((layer.out_size - 1) * layer.stride + layer.kernel - layer.in_size, 0)
    before = total // 2
    return (before, before, total - before, total - before)


def pack_weight(layer: Layer, weight: np.ndarray) -> tuple[np.ndarray, str]:
    """OIHW weights in the layout the NHWC convolution reads contiguously, and its name."""
    if layer.kind == "depthwise":
        return np.ascontiguousarray(weight.transpose(2, 3, 0, 1)), "HWOI"
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0)), "HWIO"


def conv_bn_relu(bb: relax.BlockBuilder, x, layer: Layer, weight: np.ndarray, bias: np.ndarray):
    """One convolution of `layer` (OIHW `weight`, BatchNorm folded into it and `bias`) + ReLU, on
    NHWC `x` with TF "same" padding."""
    groups = layer.in_channels if layer.kind == "depthwise" else 1
    packed, kernel_layout = pack_weight(layer, weight)
    y = bb.emit(
        relax.op.nn.conv2d(
            x,
            relax.const(packed),
            strides=layer.stride,
            padding=same_padding(layer),
            groups=groups,
            data_layout="NHWC",
            kernel_layout=kernel_layout,
        )
    )
    y = bb.emit(relax.op.add(y, relax.const(bias.reshape(1, 1, 1, -1))))
    return bb.emit(relax.op.nn.relu(y))


def build_module(config: ModelConfig, weights: dict[str, np.ndarray]) -> tvm.IRModule:
    """An IRModule whose `main(data)` returns class probabilities; weights are constants in it."""
    bb = relax.BlockBuilder()
    data = relax.Var("data", relax.TensorType(config.input_shape, "float32"))
    with bb.function("main", [data]):
        with bb.dataflow():
            x = bb.emit(relax.op.permute_dims(data, [0, 2, 3, 1]))  # NCHW -> NHWC
            for layer in layers(config):
                if layer.has_batchnorm:
                    weight, bias = fold_batchnorm(layer, weights)
                    x = conv_bn_relu(bb, x, layer, weight, bias)
                elif layer.kind == "avgpool":
                    x = bb.emit(relax.op.mean(x, axis=[1, 2]))
                elif layer.kind == "fc":
                    weight, bias = fold_batchnorm(layer, weights)
                    x = bb.emit(relax.op.matmul(x, relax.const(np.ascontiguousarray(weight.T))))
                    x = bb.emit(relax.op.add(x, relax.const(bias)))
            probabilities = bb.emit_output(relax.op.nn.softmax(x, axis=-1))
        bb.emit_func_output(probabilities)
    return bb.get()
