"""One int8 MobileNet layer as a Relax module (conv2d int8 -> int32 + the requantize epilogue of
model/quantized.py) with random data, and its expected output from a numpy integer reference
(int64 convolution + model/fixed_point.py), for checking the int8 templates shape by shape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from tvm_mobilenet.model import fixed_point
from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers
from tvm_mobilenet.model.quantized import requantize_fp32_te, requantize_te
from tvm_mobilenet.model.relax_builder import same_padding

CONFIGS = (ModelConfig(1.0, 224), ModelConfig(0.25, 64))


@dataclass
class LayerCase:
    mod: tvm.IRModule
    data: np.ndarray
    expected: np.ndarray


def unique_layers(config: ModelConfig) -> list[Layer]:
    """Every depthwise and pointwise layer shape of `config` once."""
    seen, result = set(), []
    for layer in layers(config):
        key = (layer.kind, layer.in_size, layer.in_channels, layer.out_channels, layer.stride)
        if layer.kind in ("depthwise", "pointwise") and key not in seen:
            seen.add(key)
            result.append(layer)
    return result


def all_layers(configs=CONFIGS) -> list[tuple[ModelConfig, Layer]]:
    return [(config, layer) for config in configs for layer in unique_layers(config)]


def layer_id(item) -> str:
    config, layer = item
    size = layer.in_size
    return (
        f"{config.alpha}-{config.resolution}-{layer.kind}-{size}x{size}x{layer.in_channels}"
        f"-s{layer.stride}-{layer.out_channels}"
    )


def _scales(rng, fan_in: int, channels: int):
    """(input scale, per-channel weight scales, output scale) that spread outputs over int8:
    |acc| ~ sqrt(fan_in) * 74 * 73 (rms of uniform int8 data and weights) maps to ~64."""
    input_scale = np.float32(0.02)
    weight_scales = (rng.uniform(0.5, 2.0, channels) * 0.01).astype(np.float32)
    multiplier = 64 / (np.sqrt(fan_in) * 74 * 73)
    output_scale = np.float32(input_scale * 0.01 / multiplier)
    return input_scale, weight_scales, output_scale


def layer_case(
    layer: Layer, data_dtype: str, arithmetic: str, seed: int = 0, saturating: bool = False
) -> LayerCase:
    """`saturating`: expect AVX2's saturating u8 x s8 multiply (x86.AVX2_INT8_SATURATING), each
    int16 pair sum of consecutive input channels clipped, instead of the exact convolution."""
    rng = np.random.default_rng(seed)
    size, cin, cout = layer.in_size, layer.in_channels, layer.out_channels
    info = np.iinfo(data_dtype)
    data = rng.integers(info.min, info.max + 1, (1, size, size, cin)).astype(data_dtype)
    depthwise = layer.kind == "depthwise"
    shape = (layer.kernel, layer.kernel, cin, 1 if depthwise else cout)
    weight = rng.integers(-127, 128, shape).astype(np.int8)
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    scales = _scales(rng, layer.kernel**2 * (1 if depthwise else cin), cout)
    # outputs as the rewrite stores them: u8 after ReLU, else int8 with a zero point
    unsigned = data_dtype == "uint8"
    out_dtype, zp, lo, hi = ("uint8", 0, 0, 255) if unsigned else ("int8", -5, -128, 127)
    clamp = {"zero_point": zp, "qmin": lo, "qmax": hi, "dtype": out_dtype}
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(data.shape, data_dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            acc = bb.emit(
                relax.op.nn.conv2d(
                    x,
                    relax.const(weight),
                    strides=layer.stride,
                    padding=same_padding(layer),
                    groups=cin if depthwise else 1,
                    data_layout="NHWC",
                    kernel_layout="HWOI" if depthwise else "HWIO",
                    out_dtype="int32",
                )
            )
            out = bb.emit_output(_epilogue(bb, acc, bias, scales, clamp, arithmetic))
        bb.emit_func_output(out)
    conv = _pointwise_saturating if saturating else _conv_int64
    accumulators = conv(data, weight, layer, depthwise) + bias
    expected = fixed_point.requantize(accumulators, scales, zp, lo, hi, arithmetic)
    return LayerCase(bb.get(), data, expected.astype(out_dtype))


def _epilogue(bb, acc, bias, scales, clamp, arithmetic):
    if arithmetic == "xnnpack":
        scale = relax.const(fixed_point.float_scales(*scales))
        return bb.emit_te(requantize_fp32_te, acc, relax.const(bias), scale, **clamp)
    multiplier, shift = fixed_point.conv_multipliers(*scales)
    assert (shift <= 0).all()  # multipliers below 1: no left shift, as in MobileNets
    right = relax.const(np.maximum(-shift, 0).astype(np.int32))
    return bb.emit_te(
        requantize_te, acc, relax.const(bias), relax.const(multiplier), right, None, **clamp
    )


def _pointwise_saturating(data, weight, layer: Layer, depthwise: bool) -> np.ndarray:
    """vpmaddubsw's 1x1 convolution: the sum over channel pairs (2j, 2j + 1) of their products'
    sum clipped to int16."""
    assert layer.kind == "pointwise" and not depthwise
    x, w = data.astype(np.int64)[0], weight[0, 0].astype(np.int64)
    acc = np.zeros((*x.shape[:2], w.shape[1]), np.int64)
    for j in range(0, x.shape[-1], 2):
        pair = x[..., j, None] * w[j] + x[..., j + 1, None] * w[j + 1]
        acc += np.clip(pair, -32768, 32767)
    return acc[None]


def _conv_int64(data, weight, layer: Layer, depthwise: bool) -> np.ndarray:
    """int64 NHWC convolution with zero padding (the stored value 0)."""
    top, left, bottom, right = same_padding(layer)
    padded = np.pad(data.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    k, s, out = layer.kernel, layer.stride, layer.out_size
    acc = np.zeros((1, out, out, layer.out_channels), np.int64)
    for kh in range(k):
        for kw in range(k):
            window = padded[:, kh : kh + s * out : s, kw : kw + s * out : s, :]
            if depthwise:
                acc += window * weight[kh, kw, :, 0].astype(np.int64)
            else:
                acc += np.einsum("nhwi,io->nhwo", window, weight[kh, kw].astype(np.int64))
    return acc
