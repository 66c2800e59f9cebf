"""x86 templates: the shared CPU templates with AVX-512 or AVX2 register shapes."""

from __future__ import annotations

import tvm
from tvm.target import codegen

from . import cpu

# AVX-512: 32 zmm registers of 16 floats; AVX2: 16 ymm registers of 8 floats. The register tile
# keeps a few registers free for the broadcast input and the weight vector.
# The classifier's tile: 8 output vectors of 8 lanes at most (1000 classes: 5 x 8, see
# cpu_untuned.dense; 1000 is no multiple of 16, so AVX-512 runs it in 8-lane vectors too).
AVX512 = cpu.CpuParams(lanes=16, max_vectors=4, max_columns=8, dense_vectors=8)
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
    depthwise_columns=4,
    parallel_min_flops=4e6,
    parallel_min_elements=1 << 16,
)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return AVX512 if codegen.llvm_cpu_has_features("avx512f", target) else AVX2


TEMPLATES = {"depthwise": cpu.depthwise, "conv": cpu.conv}
