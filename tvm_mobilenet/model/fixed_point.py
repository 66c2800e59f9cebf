"""int8 requantization arithmetic in numpy: the reference every int8 kernel must equal.

Two arithmetics, named after the runtimes whose results they reproduce bit for bit (checked against
the interpreter on whole int8 MobileNets, see README "int8"):

- "tflite": TFLite's reference fixed point (its builtin kernels). The real multiplier
  in_scale * w_scale[c] / out_scale (float32 scales widened to double) becomes an int32
  significand q in [2^30, 2^31) and a power-of-two shift (QuantizeMultiplier); an accumulator x is
  scaled by SaturatingRoundingDoublingHighMul(x << left, q) = (x * q + 2^30) >> 31 (round half up;
  equal to TFLite's saturating form for q >= 0, checked exhaustively on 3 M pairs) and then
  RoundingDivideByPOT (round half away from zero).
- "xnnpack": XNNPACK's "fp32" requantization, what TFLite's default interpreter runs on x86:
  rint(float32(x) * float32(in_scale * w_scale[c] / out_scale)), round half to even.
"""

from __future__ import annotations

import math

import numpy as np

ARITHMETICS = ("tflite", "xnnpack")


def quantize_multiplier(multiplier: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (significand, shift) with multiplier ~= q * 2^(shift - 31)."""
    if multiplier < 0:
        raise ValueError(f"multiplier {multiplier} < 0")
    if multiplier == 0:
        return 0, 0
    fraction, shift = math.frexp(multiplier)
    significand = math.floor(fraction * (1 << 31) + 0.5)  # std::round, half away from zero (> 0)
    if significand == 1 << 31:
        significand //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return significand, shift


def real_multipliers(input_scale, filter_scales, output_scale) -> np.ndarray:
    """in_scale * w_scale[c] / out_scale per output channel, in double from float32 scales (as
    TFLite's PopulateConvolutionQuantizationParams computes them)."""
    filters = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32)).astype(np.float64)
    return float(np.float32(input_scale)) * filters / float(np.float32(output_scale))


def conv_multipliers(input_scale, filter_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (significand, shift) int32 arrays of a convolution or FC."""
    pairs = [
        quantize_multiplier(float(m))
        for m in real_multipliers(input_scale, filter_scales, output_scale)
    ]
    return (
        np.array([p[0] for p in pairs], dtype=np.int32),
        np.array([p[1] for p in pairs], dtype=np.int32),
    )


def float_scales(input_scale, filter_scales, output_scale) -> np.ndarray:
    """XNNPACK's per-channel float32 requantization scale."""
    filters = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    return (np.float32(input_scale) * filters / np.float32(output_scale)).astype(np.float32)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, significand, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier, broadcast over the last axis (int32 result)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    shifted = (x << np.maximum(shift, 0)).astype(np.int32).astype(np.int64)  # int32 wrap, as TFLite
    high = (shifted * np.asarray(significand, dtype=np.int64) + (1 << 30)) >> 31
    return _rounding_divide_by_pot(high, np.maximum(-shift, 0)).astype(np.int32)


def requantize(accumulator, scales, zero_point: int, qmin: int, qmax: int, arithmetic: str):
    """int32 accumulators (bias included) -> clamped output integers (int32; the caller casts).

    `scales` = (input scale, per-channel filter scales, output scale)."""
    if arithmetic == "tflite":
        scaled = multiply_by_quantized_multiplier(accumulator, *conv_multipliers(*scales))
    elif arithmetic == "xnnpack":
        product = np.asarray(accumulator, dtype=np.float32) * float_scales(*scales)
        scaled = np.rint(product).astype(np.int32)
    else:
        raise ValueError(f"arithmetic must be one of {ARITHMETICS}, not {arithmetic}")
    return np.clip(scaled.astype(np.int64) + zero_point, qmin, qmax).astype(np.int32)


def rounding_average(total: np.ndarray, count: int) -> np.ndarray:
    """TFLite's integer AVERAGE_POOL_2D division: round half away from zero."""
    half = count // 2
    return np.where(total > 0, (total + half) // count, -((-total + half) // count))
