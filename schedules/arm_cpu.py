"""ARM CPU templates: the shared CPU templates with NEON register shapes (AArch64)."""

from __future__ import annotations

import tvm
from tvm.target import codegen

from . import cpu, cpu_int8, intrin

# AArch64 NEON: 32 q registers of 4 floats. Narrow vectors, so more of them per tile.
NEON = cpu.CpuParams(lanes=4, max_vectors=4, max_columns=4)

# int8: sdot where the core has the dot-product extension (Cortex-A55/A76 and later; the targets
# file says "+dotprod"), else smull + saddlp (Cortex-A53/A72). 32 q registers: up to 24 int32x4
# accumulators with sdot, 16 with the widening path (it needs more temporaries).
SDOT_INT8 = cpu_int8.Int8Params(4, 4, 6, max_accumulators=24, dot=intrin.SDOT)
NEON_INT8 = cpu_int8.Int8Params(4, 4, 4, max_accumulators=16, dot=intrin.NEON)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return NEON


def int8_params_for(target: tvm.target.Target) -> cpu_int8.Int8Params:
    return SDOT_INT8 if codegen.llvm_cpu_has_features("dotprod", target) else NEON_INT8


# int8 arithmetic by default: TFLite's fixed point, its reference (sqrdmulh-friendly on NEON).
DEFAULT_INT8_ARITHMETIC = "tflite"

TEMPLATES = {
    "depthwise": cpu.depthwise,
    "conv": cpu.conv,
    "int8_depthwise": cpu_int8.depthwise,
    "int8_conv": cpu_int8.conv,
}
