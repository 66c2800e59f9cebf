"""x86 templates: the shared CPU templates with AVX-512 or AVX2 register shapes."""

from __future__ import annotations

import dataclasses

import tvm
from tvm.target import codegen

from . import cpu, cpu_int8, intrin

# AVX-512: 32 zmm registers of 16 floats; AVX2: 16 ymm registers of 8 floats. The register tile
# keeps a few registers free for the broadcast input and the weight vector.
# The classifier's tile: 8 output vectors of 8 lanes at most (1000 classes: 5 x 8, see
# cpu_untuned.dense; 1000 is no multiple of 16, so AVX-512 runs it in 8-lane vectors too).
# Since 2026-11-27, measured on a 2-core AMD EPYC (Zen 4, 512-bit FMAs as two 256-bit halves), in
# the model, untuned: 1x1 layers tile pixels (h x w as one axis, as on AVX2), at most 2 vectors by
# 7 pixels (112x112 to 28x28: 4-vector tiles ran them 1.2x (6 x 4) to 2.6x (4 x 4) slower, 8 x 2
# the 112x112x32 layer 392 instead of 238 us at 2 threads); depthwise keeps one vector by 8 columns
# (2 vectors, padded, as on AVX2: the early depthwise layers ~2x slower). The model 3.3-4.1 %
# faster at 1 and 2 threads than with row tiles of 8 x 2 (in turns, 2 runs each). The 14x14 and
# 7x7 layers (weights outermost) took 6 x 4 tiles at first, the fastest alone and warm with weights
# packed per 64 channels; with 7 x 2 and the weights packed per 32 (the tile's width:
# tasks/weight_packing.py) they are faster in the model, where their weights arrive cold:
# the five 14x14x512 layers 4493-4512 vs 4573-4597 us at 1 thread, 7x7x1024 902-906 vs 930-931;
# the model 1.3-1.4 % faster at 1 thread and 1.7-1.8 % at 2 (in turns, 2 runs each).
AVX512 = cpu.CpuParams(
    lanes=16,
    max_vectors=4,
    max_columns=7,
    dense_vectors=8,
    tile_registers=32,
    pixel_tiles=True,
    pixel_vectors=2,
    depthwise_columns=8,
    strassen=True,
)
# AVX2's convolution tile: accumulators (columns x vectors) + the weight vectors + one broadcast
# in the 16 ymm registers: 6x2, 5x2, 4x2 (4x3 for 24 channels), 2x4; widths without a divisor in
# 3..6 (7, 14) get a padded last tile (cpu._conv_tile). Measured on a 2-core EPYC (znver3),
# 1 thread: 7x7x1024 pointwise 4.4 -> 1.6-2.1 ms, 5x5x512 0.56 -> 0.17 ms.
# Untuned kernels under 4 MFLOP (~50 us on one core) and layout changes under 64K elements stay on
# the calling thread: at 2 threads on a shared 2-core EPYC, MobileNet 0.25/128's per-process
# medians were 0.54-7.4 ms always parallel, 0.38-0.53 ms with them serial (ONNX Runtime: 0.68-1.23).
AVX2 = cpu.CpuParams(
    lanes=8,
    max_vectors=4,
    max_columns=6,
    dense_vectors=8,
    tile_registers=16,
    pixel_tiles=True,
    depthwise_columns=4,
    depthwise_vectors=2,
    parallel_min_flops=4e6,
    parallel_min_elements=1 << 16,
    # Strassen (schedules/strassen.py): without prefetch level in the model (AVX2 code on a 2-core
    # AMD EPYC Zen 4, 2026-11-27, 1.0/224 in turns: 1 thread -0.2/-0.6 %, 2 threads +1.7/+2.7 %;
    # alone and warm 5 % faster, but in the model its 1.75x weight operands arrive from memory, 4x
    # the AVX-512 kernel's penalty). Each tile pass prefetching its share of the weight block two
    # ahead into L2: 1 thread -1.6 to -3.0 %, 2 threads -2.2 to -4.4 % (tuned; untuned -2.2/-2.4,
    # -3.4/-3.6). On AVX-512 the same prefetch cost 1.7 % at 1 thread. Maps with fewer pixels per
    # core were slower with it (1.0/128, 8x8x512 on 2 cores: 464 vs 352 us in the model, the model
    # +8 %; 0.75/192, 12x12: +3 %), level with the 96-pixel floor. Not measured on an AVX2-only CPU.
    strassen=True,
    strassen_prefetch=2,
    strassen_min_pixels=96,
)

# int8. AVX-512 VNNI: vpdpbusd, 4 x 4 tiles of 16 int32. AVX2: the vpmaddubsw sign trick, at most
# 12 accumulators of 8 int32 (16 ymm, minus the weight vectors, |a|, a and the ones); measured 15%
# faster over the pointwise tasks than widening to int16 and vpmaddwd alone. Without AVX2: LLVM's
# widening multiplies.
AVX512_VNNI_INT8 = cpu_int8.Int8Params(16, 4, 8, max_accumulators=24, dot=intrin.VNNI)
AVX2_INT8 = cpu_int8.Int8Params(8, 4, 6, max_accumulators=12, dot=intrin.AVX2_SIGN)
SSE_INT8 = cpu_int8.Int8Params(8, 2, 4, max_accumulators=8)
# Opt-in (`--int8-multiply saturating`: cpu_int8.SATURATING_KEY in the target's keys): AVX2
# multiplies uint8 activations by int8 weights with vpmaddubsw directly, as ONNX Runtime does,
# and int16 pair sums saturate. VNNI's vpdpbusd is exact either way.
AVX2_INT8_SATURATING = dataclasses.replace(AVX2_INT8, dot=intrin.AVX2_U8S8)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    params = AVX512 if codegen.llvm_cpu_has_features("avx512f", target) else AVX2
    return cpu.for_target(params, target)


def int8_params_for(target: tvm.target.Target) -> cpu_int8.Int8Params:
    if codegen.llvm_cpu_has_features("avx512vnni", target):
        return AVX512_VNNI_INT8
    if codegen.llvm_cpu_has_features("avx2", target):
        return AVX2_INT8_SATURATING if cpu_int8.SATURATING_KEY in target.keys else AVX2_INT8
    return SSE_INT8


# int8 arithmetic by default: XNNPACK's fp32 requantization, what TFLite runs on x86 (its default
# delegate) and cheaper here than TFLite's 64-bit fixed point (AVX2 has no 64-bit arithmetic shift).
DEFAULT_INT8_ARITHMETIC = "xnnpack"

TEMPLATES = cpu_int8.CPU_TEMPLATES
