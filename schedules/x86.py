"""x86 templates: the shared CPU templates with AVX-512 or AVX2 register shapes."""

from __future__ import annotations

import tvm
from tvm.target import codegen

from . import cpu, cpu_int8, intrin

# AVX-512: 32 zmm registers of 16 floats; AVX2: 16 ymm registers of 8 floats. The register tile
# keeps a few registers free for the broadcast input and the weight vector.
AVX512 = cpu.CpuParams(lanes=16, max_vectors=4, max_columns=8)
AVX2 = cpu.CpuParams(lanes=8, max_vectors=4, max_columns=4)

# int8. AVX-512 VNNI: vpdpbusd, 4 x 4 tiles of 16 int32. AVX2: the vpmaddubsw sign trick, at most
# 12 accumulators of 8 int32 (16 ymm, minus the weight vectors, |a|, a and the ones); measured 15%
# faster over the pointwise tasks than widening to int16 and vpmaddwd alone. Without AVX2: LLVM's
# widening multiplies.
AVX512_VNNI_INT8 = cpu_int8.Int8Params(16, 4, 8, max_accumulators=24, dot=intrin.VNNI)
AVX2_INT8 = cpu_int8.Int8Params(8, 4, 6, max_accumulators=12, dot=intrin.AVX2_SIGN)
SSE_INT8 = cpu_int8.Int8Params(8, 2, 4, max_accumulators=8)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return AVX512 if codegen.llvm_cpu_has_features("avx512f", target) else AVX2


def int8_params_for(target: tvm.target.Target) -> cpu_int8.Int8Params:
    if codegen.llvm_cpu_has_features("avx512vnni", target):
        return AVX512_VNNI_INT8
    if codegen.llvm_cpu_has_features("avx2", target):
        return AVX2_INT8
    return SSE_INT8


# int8 arithmetic by default: XNNPACK's fp32 requantization, what TFLite runs on x86 (its default
# delegate) and cheaper here than TFLite's 64-bit fixed point (AVX2 has no 64-bit arithmetic shift).
DEFAULT_INT8_ARITHMETIC = "xnnpack"

TEMPLATES = {
    "depthwise": cpu.depthwise,
    "conv": cpu.conv,
    "int8_depthwise": cpu_int8.depthwise,
    "int8_conv": cpu_int8.conv,
}
