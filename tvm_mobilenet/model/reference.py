"""A float64 numpy MobileNet v1, written independently of TVM, to check every compiled module.

BatchNorm is applied as its own step here (not folded), so the check also covers the folding."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers
from tvm_mobilenet.model.weights import BN_EPSILON, BN_FIELDS


def _pad(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """TF-style "same" padding, as MobileNet v1 was trained with: output = ceil(in / stride)."""
    size = x.shape[2]
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return np.pad(x, ((0, 0), (0, 0), (before, total - before), (before, total - before)))


def _windows(x: np.ndarray, kernel: int, stride: int, out: int):
    """Yield (ky, kx, strided view of x) for every kernel tap."""
    for ky in range(kernel):
        for kx in range(kernel):
            yield ky, kx, x[:, :, ky : ky + stride * out : stride, kx : kx + stride * out : stride]


def conv2d(x: np.ndarray, weight: np.ndarray, stride: int, groups: int = 1) -> np.ndarray:
    """NCHW convolution with "same" padding; groups == channels for depthwise."""
    kernel = weight.shape[2]
    out = (x.shape[2] + stride - 1) // stride
    padded = _pad(x, kernel, stride)
    result = np.zeros((x.shape[0], weight.shape[0], out, out), dtype=np.float64)
    for ky, kx, window in _windows(padded, kernel, stride, out):
        tap = weight[:, :, ky, kx]
        if groups == 1:
            result += np.einsum("nchw,oc->nohw", window, tap, optimize=True)
        else:
            result += window * tap[None, :, 0, None, None]
    return result


def conv_bias_relu_nhwc(
    data: np.ndarray, weight: np.ndarray, bias: np.ndarray, depthwise: bool, stride: int
) -> np.ndarray:
    """One fused layer as the compiled functions compute it, in float64 and NHWC: "same" padding,
    weight HWOI (depthwise) or HWIO, then bias and ReLU."""
    x = data.transpose(0, 3, 1, 2).astype(np.float64)
    if depthwise:
        w, groups = weight.transpose(2, 3, 0, 1), data.shape[3]
    else:
        w, groups = weight.transpose(3, 2, 0, 1), 1
    y = conv2d(x, w.astype(np.float64), stride, groups)
    return np.maximum(y.transpose(0, 2, 3, 1) + bias.reshape(1, 1, 1, -1), 0.0)


def batchnorm(x: np.ndarray, layer: Layer, weights: dict[str, np.ndarray]) -> np.ndarray:
    gamma, beta, mean, var = (weights[f"{layer.name}.{f}"].astype(np.float64) for f in BN_FIELDS)
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return (x - mean[None, :, None, None]) * scale[None, :, None, None] + beta[None, :, None, None]


# Max abs error on the softmax output that every check of a compiled model allows (compile, bench,
# run --model).
SOFTMAX_TOLERANCE = 1e-4


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def as_probabilities(output: np.ndarray) -> np.ndarray:
    """`output` if its rows are already probabilities (the model ends in softmax), else their
    softmax.

    Model files may end in logits or in softmax; outputs are compared as probabilities either way.
    """
    output = np.asarray(output, dtype=np.float64)
    rows = output.reshape(output.shape[0], -1) if output.ndim > 1 else output[None]
    if np.all(rows >= 0) and np.allclose(rows.sum(axis=-1), 1.0, atol=1e-3):
        return output
    return softmax(rows).reshape(output.shape)


def forward(
    config: ModelConfig,
    weights: dict[str, np.ndarray],
    image: np.ndarray,
    return_logits: bool = False,
) -> np.ndarray:
    """Class probabilities (batch, 1000) in float64 for an NCHW image batch."""
    x = np.asarray(image, dtype=np.float64)
    for layer in layers(config):
        if layer.has_batchnorm:
            weight = weights[f"{layer.name}.weight"].astype(np.float64)
            groups = layer.in_channels if layer.kind == "depthwise" else 1
            x = conv2d(x, weight, layer.stride, groups)
            x = np.maximum(batchnorm(x, layer, weights), 0.0)
        elif layer.kind == "avgpool":
            x = x.mean(axis=(2, 3))
        elif layer.kind == "fc":
            x = x @ weights["fc.weight"].astype(np.float64).T + weights["fc.bias"].astype(
                np.float64
            )
    return x if return_logits else softmax(x)


def random_input(shape, seed: int = 1) -> np.ndarray:
    """A deterministic, normalised image batch of `shape`."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def int8_input(shape, seed: int = 1) -> np.ndarray:
    """A deterministic int8 input (for full-integer model files)."""
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)


def input_for(shape, dtype: str | None) -> np.ndarray:
    """The fixed input of a module whose input is `dtype`: int8 for full-integer model files,
    else float32 (also for None: a module built before modules reported their input dtype)."""
    return int8_input(shape) if dtype == "int8" else random_input(shape)


def sample_input(config: ModelConfig) -> np.ndarray:
    """The fixed input that compile verifies with and `run` uses by default."""
    return random_input(config.input_shape)
