"""`--precision int8` for the built-in MobileNet: post-training quantization in TFLite's scheme.

Calibration runs the float64 network (NHWC, as the compiled functions compute) on a batch of inputs
and takes per-tensor ranges; then, as TFLite's full-integer post-training quantization does:
- activations per tensor, asymmetric int8: range [min(0, lo), max(0, hi)], scale = range / 255,
  zero point = round(-128 - lo / scale) (after ReLU lo = 0, so the zero point is -128);
- weights per output channel, symmetric: scale = max|w| / 127, values in [-127, 127];
- biases int32 at scale input_scale * weight_scale[c];
- the pooled tensor keeps its input's parameters (TFLite's AVERAGE_POOL_2D requires it); the
  classifier's logits are int8; the softmax is computed in float on the dequantized logits, so the
  model still returns probabilities like the fp32 one.

`qdq_module` emits the quantized model in the form TVM's TFLite frontend gives int8 files
(quantize / dequantize around float operators), so one rewrite (quantized.py) and one set of int8
templates serve imported int8 files and our own quantization. `integer_forward` is the same model in
numpy integers: the reference a compiled int8 build must equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from tvm_mobilenet.errors import CalibrationError
from tvm_mobilenet.model import fixed_point, reference
from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers
from tvm_mobilenet.model.relax_builder import pack_weight, same_padding
from tvm_mobilenet.model.weights import fold_batchnorm

SYNTHETIC_IMAGES = 8


@dataclass(frozen=True)
class QParams:
    """real = scale * (q - zero_point)"""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class QuantizedLayer:
    layer: Layer
    weight: np.ndarray  # int8: OIHW for convolutions, (units, C) for the classifier
    weight_scale: np.ndarray  # float32, per output channel
    bias: np.ndarray  # int32 at input_scale * weight_scale
    output: QParams


@dataclass(frozen=True)
class QuantizedMobileNet:
    config: ModelConfig
    input: QParams
    layers: list[QuantizedLayer]  # convolutions in order, then the classifier
    calibration: str  # where the calibration inputs came from (for the output and the log)


def activation_qparams(lo: float, hi: float) -> QParams:
    """TFLite's asymmetric int8 parameters for a real range (widened so that 0 is exact)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        return QParams(1.0, 0)
    scale = float(np.float32((hi - lo) / 255.0))
    return QParams(scale, int(np.clip(np.round(-128 - lo / scale), -128, 127)))


def weight_qparams(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights per output channel (axis 0): (int8 weights, float32 scales)."""
    peak = np.abs(weight.astype(np.float64)).reshape(weight.shape[0], -1).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    quantized = np.clip(np.round(weight / scale.astype(np.float64).reshape(shape)), -127, 127)
    return quantized.astype(np.int8), scale


def synthetic_images(shape: tuple[int, ...], count: int = SYNTHETIC_IMAGES, seed: int = 1):
    """Deterministic NCHW images in [-1, 1]: smooth waves plus noise, so activations have
    image-like spatial statistics (pure noise would calibrate every layer to its extremes)."""
    rng = np.random.default_rng(seed)
    _, channels, height, width = shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for _ in range(count):
        waves = [
            np.sin(
                2 * np.pi * (rng.uniform(0.5, 4) * xx + rng.uniform(0.5, 4) * yy)
                + rng.uniform(0, 6.3)
            )
            for _ in range(channels)
        ]
        image = np.stack(waves) + rng.normal(0, 0.25, (channels, height, width))
        images.append(np.clip(image, -1, 1))
    return np.stack(images).astype(np.float32)


def load_calibration(path: Path, config: ModelConfig) -> np.ndarray:
    """A .npy batch of NCHW float images for `config`; CalibrationError says what is wrong."""
    want = f"(N, 3, {config.resolution}, {config.resolution}) float array"
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CalibrationError(
            f"cannot read --calibration {path} as a .npy array ({err})"
        ) from None
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(config.input_shape[1:]):
        raise CalibrationError(
            f"--calibration {path} has shape {tuple(images.shape)}; expected an {want} "
            "(NCHW, normalised like the model's input)"
        )
    if not np.issubdtype(images.dtype, np.floating) or not np.isfinite(images).all():
        raise CalibrationError(f"--calibration {path} must hold finite floats: an {want}")
    return images.astype(np.float32)


def calibration_label(path: Path | None) -> str:
    """How the log and the output name the calibration: a file by name and content."""
    if path is None:
        return f"{SYNTHETIC_IMAGES} deterministic synthetic images"
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return f"{Path(path).name} (sha256 {digest})"


def _float_layers(config: ModelConfig, weights: dict) -> list[tuple[Layer, np.ndarray, np.ndarray]]:
    """(layer, float64 weight, bias) of every convolution (OIHW) and the classifier."""
    return [
        (layer, *fold_batchnorm(layer, weights, np.float64))
        for layer in layers(config)
        if layer.has_batchnorm or layer.kind == "fc"
    ]


def quantize_model(
    config: ModelConfig, weights: dict, images: np.ndarray, calibration: str
) -> QuantizedMobileNet:
    """Calibrate on `images` (NCHW float) and quantize every layer."""
    current = activation_qparams(float(images.min()), float(images.max()))
    model_input = current
    x = images.astype(np.float64)
    quantized = []
    for layer, weight, bias in _float_layers(config, weights):
        if layer.kind == "fc":
            x = x.mean(axis=(2, 3)) @ weight.T + bias
        else:
            groups = layer.in_channels if layer.kind == "depthwise" else 1
            x = np.maximum(
                reference.conv2d(x, weight, layer.stride, groups) + bias[:, None, None], 0
            )
        q_weight, w_scale = weight_qparams(weight)
        q_bias = np.round(bias / (current.scale * w_scale.astype(np.float64))).astype(np.int32)
        current = activation_qparams(float(x.min()), float(x.max()))
        quantized.append(QuantizedLayer(layer, q_weight, w_scale, q_bias, current))
    return QuantizedMobileNet(config, model_input, quantized, calibration)


# ---------------------------------------------------------------------------- the Relax module


class _QdqEmitter:
    """Emits the frontend's quantize / dequantize form of each operator."""

    def __init__(self, bb: relax.BlockBuilder):
        self.bb = bb

    def quantize(self, x, q: QParams):
        scale, zp = relax.const(np.float32(q.scale)), relax.const(np.int32(q.zero_point))
        return self.bb.emit(relax.op.quantize(x, scale, zp, axis=0, out_dtype="int8"))

    def dequantize(self, x, scale, zero_point, axis=0):
        scale = relax.const(np.asarray(scale, dtype=np.float32))
        zero_point = relax.const(np.asarray(zero_point, dtype=np.int32))
        return self.bb.emit(
            relax.op.dequantize(x, scale, zero_point, axis=axis, out_dtype="float32")
        )

    def bias(self, q: QuantizedLayer, x_scale: float):
        zeros = np.zeros(len(q.weight_scale), np.int32)
        bias_scale = (np.float32(x_scale) * q.weight_scale).astype(np.float32)
        return self.dequantize(relax.const(q.bias), bias_scale, zeros)

    def conv(self, x, q: QuantizedLayer, x_q: QParams):
        layer = q.layer
        packed, layout = pack_weight(layer, q.weight)
        axis = 2 if layout == "HWOI" else 3
        zeros = np.zeros(len(q.weight_scale), np.int32)
        w = self.dequantize(relax.const(packed), q.weight_scale, zeros, axis=axis)
        y = self.bb.emit(
            relax.op.nn.conv2d(
                self.dequantize(x, x_q.scale, x_q.zero_point),
                w,
                strides=layer.stride,
                padding=same_padding(layer),
                groups=layer.in_channels if layer.kind == "depthwise" else 1,
                data_layout="NHWC",
                kernel_layout=layout,
            )
        )
        y = self.quantize(self.bb.emit(relax.op.add(y, self.bias(q, x_q.scale))), q.output)
        # ReLU as the clamp of the quantized values, as the frontend writes fused activations
        return self.bb.emit(relax.op.clip(y, float(q.output.zero_point), 127.0))

    def average_pool(self, x, layer: Layer):
        """TFLite's quantized AVERAGE_POOL_2D as the frontend writes it."""
        wide = self.bb.emit(relax.op.astype(x, "int32"))
        pool = relax.op.nn.avg_pool2d(
            wide, pool_size=layer.in_size, strides=layer.in_size, layout="NHWC"
        )
        return self.bb.emit(relax.op.astype(self.bb.emit(pool), "int8"))

    def classifier(self, x, q: QuantizedLayer, x_q: QParams):
        zeros = np.zeros(len(q.weight_scale), np.int32)
        w = self.dequantize(relax.const(np.ascontiguousarray(q.weight.T)), q.weight_scale, zeros, 1)
        y = self.bb.emit(relax.op.matmul(self.dequantize(x, x_q.scale, x_q.zero_point), w))
        return self.quantize(self.bb.emit(relax.op.add(y, self.bias(q, x_q.scale))), q.output)


def qdq_module(model: QuantizedMobileNet) -> tvm.IRModule:
    """The quantized model in the TFLite frontend's QDQ form: NCHW float in, probabilities out."""
    config = model.config
    bb = relax.BlockBuilder()
    data = relax.Var("data", relax.TensorType(config.input_shape, "float32"))
    emit = _QdqEmitter(bb)
    with bb.function("main", [data]):
        with bb.dataflow():
            x = bb.emit(relax.op.permute_dims(emit.quantize(data, model.input), [0, 2, 3, 1]))
            current = model.input
            for q in model.layers:
                if q.layer.kind == "fc":
                    pooled_layer = next(lay for lay in layers(config) if lay.kind == "avgpool")
                    x = emit.classifier(emit.average_pool(x, pooled_layer), q, current)
                else:
                    x = emit.conv(x, q, current)
                current = q.output
            logits = emit.dequantize(x, current.scale, current.zero_point)
            probabilities = relax.op.nn.softmax(logits, axis=-1)
            out = bb.emit_output(relax.op.reshape(probabilities, [config.batch, 1000]))
        bb.emit_func_output(out)
    return bb.get()


# ---------------------------------------------------------------------------- numpy reference


def quantize_input(images: np.ndarray, q: QParams) -> np.ndarray:
    """R.quantize: round half to even of x / scale (float32), plus the zero point, clamped."""
    scaled = np.asarray(images, np.float32) / np.float32(q.scale)
    return np.clip(np.round(scaled) + q.zero_point, -128, 127).astype(np.int64)


def integer_forward(model: QuantizedMobileNet, images: np.ndarray, arithmetic: str) -> np.ndarray:
    """Class probabilities (float64) of the quantized model computed in numpy integers, with the
    given requantize arithmetic (fixed_point.py): what a compiled int8 build must give."""
    x, current = quantize_input(images, model.input), model.input
    for q in model.layers:
        layer = q.layer
        centred = x - current.zero_point
        if layer.kind == "fc":
            pooled = fixed_point.rounding_average(x.sum(axis=(2, 3)), x.shape[2] * x.shape[3])
            acc = (np.clip(pooled, -128, 127) - current.zero_point) @ q.weight.astype(np.int64).T
            qmin = -128
        else:
            groups = layer.in_channels if layer.kind == "depthwise" else 1
            acc = reference.conv2d(
                centred.astype(np.float64), q.weight.astype(np.float64), layer.stride, groups
            )
            acc = np.rint(acc).astype(np.int64).transpose(0, 2, 3, 1)  # exact: integer sums < 2^53
            qmin = q.output.zero_point  # ReLU
        scales = (current.scale, q.weight_scale, q.output.scale)
        out = fixed_point.requantize(
            acc + q.bias, scales, q.output.zero_point, qmin, 127, arithmetic
        )
        x = (
            out.astype(np.int64)
            if layer.kind == "fc"
            else out.astype(np.int64).transpose(0, 3, 1, 2)
        )
        current = q.output
    logits = (x - current.zero_point).astype(np.float32) * np.float32(current.scale)
    return reference.softmax(logits.astype(np.float64))
