"""x86 templates: the shared CPU templates with AVX-512 or AVX2 register shapes."""

from __future__ import annotations

import tvm
from tvm.target import codegen

from . import cpu

# AVX-512: 32 zmm registers of 16 floats; AVX2: 16 ymm registers of 8 floats. The register tile
# keeps a few registers free for the broadcast input and the weight vector.
AVX512 = cpu.CpuParams(lanes=16, max_vectors=4, max_columns=8)
AVX2 = cpu.CpuParams(lanes=8, max_vectors=4, max_columns=4)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return AVX512 if codegen.llvm_cpu_has_features("avx512f", target) else AVX2


TEMPLATES = {"depthwise": cpu.depthwise, "conv": cpu.conv}
