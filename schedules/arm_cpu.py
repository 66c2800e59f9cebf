"""ARM CPU templates: the shared CPU templates with NEON register shapes (AArch64)."""

from __future__ import annotations

import tvm
from tvm.target import codegen

from . import cpu, cpu_int8, intrin

# AArch64 NEON: 32 q registers of 4 floats. Chosen by counting executed aarch64 instructions
# under qemu (`tvm-mobilenet bench --target arm --count-instructions`; MobileNet v1 1.0/224,
# untuned, one inference): 418 M instructions, 34 % of them fmla, with 4 columns and no lane FMA;
# 194 M, 73 % fmla, with these (TFLite/XNNPACK: 200 M, 73 %).
# - 8 columns: the largest divisor <= 8 of 7, 14 and 28 is 7 (with 4 it was 1, 2 and 4); 7-8
#   columns x 2 vectors = 14-16 accumulators + 7-8 input vectors + 2 weight vectors fit the 32
#   registers (x 4 vectors spills).
# - lane_fma: each column's 4 input channels in one q register, then `fmla vd.4s, vw.4s, vin.s[k]`:
#   one load per 4 input channels instead of one per channel (pointwise loops 52 % -> 78 % fmla).
# - dense_vectors: the untuned classifier as 10 output vectors over K (4.35 M -> 0.51 M).
NEON = cpu.CpuParams(lanes=4, max_vectors=4, max_columns=8, lane_fma=True, dense_vectors=10)

# int8: sdot where the core has the dot-product extension (Cortex-A55/A76 and later; the targets
# file says "+dotprod"), else smull + saddlp (Cortex-A53/A72). 32 q registers: up to 24 int32x4
# accumulators with sdot, 16 with the widening path (it needs more temporaries).
SDOT_INT8 = cpu_int8.Int8Params(4, 4, 6, max_accumulators=24, dot=intrin.SDOT)
NEON_INT8 = cpu_int8.Int8Params(4, 4, 4, max_accumulators=16, dot=intrin.NEON)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return cpu.for_target(NEON, target)


def int8_params_for(target: tvm.target.Target) -> cpu_int8.Int8Params:
    return SDOT_INT8 if codegen.llvm_cpu_has_features("dotprod", target) else NEON_INT8


# int8 arithmetic by default: TFLite's fixed point, its reference (sqrdmulh-friendly on NEON).
DEFAULT_INT8_ARITHMETIC = "tflite"

TEMPLATES = cpu_int8.CPU_TEMPLATES
