"""int8 depthwise and pointwise (and full) NHWC convolution templates for SIMD CPUs.

The fused int8 tasks (tvm_mobilenet/model/quantized.py, then legalization and FuseOps) are:

  depthwise: group_conv2d_nhwc[n,h,w,c] += i32(x[n, h*s+kh, w*s+kw, c]) * i32(W[kh,kw,c,0])
  pointwise: conv2d_nhwc[n,h,w,o] += i32(x[n,h,w,i]) * i32(W[...])
  both:      requantize[n,h,w,c] = the requantize epilogue of acc + bias[c] -> uint8 / int8

One implementation serves x86 (AVX2, AVX-512 VNNI) and ARM (sdot, NEON); a family passes only its
`Int8Params`. Like the fp32 templates (cpu.py), both build a register tile of int32 accumulators
over the whole reduction and run the epilogue at the tile.

- Depthwise has no dot product (each output channel reads one input channel): it is the fp32
  template with int32 lanes, and LLVM widens the int8 loads itself (x86 vpmaddwd, ARM smlal).
- Pointwise is a GEMM over input channels. When tasks/weight_packing.py has packed its weights for
  the family's dot intrinsic ([O/L][KH][KW][I/D][L][D], schedules/intrin.py), the pixels become one
  axis (a GEMM over pixels: 7x7 maps get 7-pixel tiles, not 1 or 7 columns of one row), the (L, D)
  loops are tensorized and the tile is the most accumulators within the family's register budget.
  Unpacked convolutions (the first 3x3 one, channel counts the intrinsic cannot take) get the fp32
  template's structure with LLVM's widening multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir

from tvm_mobilenet.tasks.blocks import CONV_BLOCK

from . import cpu
from .fusion import inline_prologue_and_epilogue
from .intrin import DotIntrinsic
from .knobs import Knobs, extent, heuristic_split


@dataclass(frozen=True)
class Int8Params:
    """What differs between CPU families for int8."""

    acc_lanes: int  # int32 lanes of one SIMD register (AVX2 8, AVX-512 16, NEON 4)
    max_vectors: int  # accumulator vectors per register tile and column
    max_columns: int  # output columns (pixels) per register tile
    max_accumulators: int  # columns x vectors of the pointwise tile: the register budget
    dot: DotIntrinsic | None = None  # the pointwise reduction's intrinsic, if the family has one

    @property
    def activation(self) -> str:
        """The activation storage the dot intrinsic multiplies (see model/quantized.py)."""
        return (
            "int8-unpadded" if self.dot is not None and self.dot.activation == "int8" else "uint8"
        )

    @property
    def exact(self) -> bool:
        """Whether the int8 kernels multiply exactly (not with AVX2_U8S8's saturation)."""
        return self.dot is None or self.dot.exact

    def as_fp32_shape(self) -> cpu.CpuParams:
        """The fp32 templates' register shape with int32 lanes."""
        return cpu.CpuParams(self.acc_lanes, self.max_vectors, self.max_columns)


def depthwise(sch: s_tir.Schedule, params: Int8Params, tuning: bool) -> None:
    cpu.depthwise(sch, params.as_fp32_shape(), tuning)


def conv(sch: s_tir.Schedule, params: Int8Params, tuning: bool) -> None:
    """Pointwise with the dot intrinsic if the weights are packed for it, else the fp32 form."""
    if params.dot is not None and _packed(sch) and _same_pixels(sch):
        pointwise_dot(sch, params, tuning)
    else:
        cpu.conv(sch, params.as_fp32_shape(), tuning)


def _packed(sch: s_tir.Schedule) -> bool:
    """Whether the conv reads weights packed for a dot intrinsic (6-D, tasks/weight_packing.py)."""
    return len(sch.mod["main"].params[1].ty.shape) == 6


def _same_pixels(sch: s_tir.Schedule) -> bool:
    """A 1x1 stride-1 convolution: output pixels map one to one to input pixels."""
    func = sch.mod["main"]
    data, out = ([int(d) for d in func.params[i].ty.shape] for i in (0, -1))
    return data[1:3] == out[1:3]


# A target key (see templates.with_int8_multiply): the family may multiply int8 inexactly, with
# ONNX Runtime's int16 saturation (x86 AVX2 only: x86.AVX2_INT8_SATURATING).
SATURATING_KEY = "int8_saturating"

# TVM 0.27's LowerTVMBuiltin keeps CPU allocations below 1024 bytes on the stack (registers, after
# LLVM) and gives larger ones a TVMBackendAllocWorkspace / FreeWorkspace pair: for the accumulator
# tile, one per iteration of the parallel loop. The heuristic tile stays below it.
STACK_ALLOCA_BYTES = 1024


def register_tile(pixels: int, vectors: int, params: Int8Params) -> tuple[int, int]:
    """Heuristic (columns, vectors) of the pointwise tile: the most accumulators within the budget
    (and, in bytes, below STACK_ALLOCA_BYTES: VNNI's 4 x 4 tile of 16 int32 is 1024), from divisors
    of the pixel count and of the output-channel vectors; ties go to more vectors (each broadcast
    input word then feeds more multiply-adds)."""
    budget = min(params.max_accumulators, (STACK_ALLOCA_BYTES - 1) // (params.dot.lanes * 4))
    best = (1, 1)
    for v in range(1, params.max_vectors + 1):
        for c in range(1, params.max_columns + 1):
            fits = vectors % v == 0 and pixels % c == 0 and c * v <= budget
            if fits and (c * v, v) > (best[0] * best[1], best[1]):
                best = (c, v)
    return best


def pointwise_dot(sch: s_tir.Schedule, params: Int8Params, tuning: bool) -> None:
    """out[n,p,o] = requant(sum_i x[n,p,i] * W[o//L, 0, 0, i//D, o%L, i%D]) over pixels p = (h, w).

    Register tile: columns pixels x vectors x L output channels of int32, accumulated over all
    input channels (split for cache reuse), one intrinsic call per (column, vector, D inputs)."""
    lanes, depth = params.dot.lanes, params.dot.depth
    knobs = Knobs(sch, tuning)
    conv_block = sch.get_sblock(CONV_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv_block)
    cpu.pixels_as_one_axis(sch, conv_block, epilogue)
    n, p, o, kh, kw, i = sch.get_loops(conv_block)
    pixels = extent(sch, p)
    o, o_lane = sch.split(o, [None, lanes], preserve_unit_iters=True)
    i, i_dot = sch.split(i, [None, depth], preserve_unit_iters=True)
    columns, vectors = register_tile(pixels, extent(sch, o), params)
    (o_outer, o_vec), _ = knobs.tile(o, [vectors], max_innermost=params.max_vectors)
    (p_outer, p_inner), _ = knobs.tile(p, [columns], max_innermost=params.max_columns)
    (i_outer, i_inner), _ = knobs.tile(i, [128 // depth], max_innermost=512 // depth)
    sch.reorder(n, o_outer, p_outer, i_outer, kh, kw, i_inner, p_inner, o_vec, o_lane, i_dot)
    sch.reverse_compute_at(epilogue, p_outer, preserve_unit_loops=True)
    *_, channel = sch.get_loops(epilogue)
    _, channel_vector = sch.split(channel, [None, params.acc_lanes], preserve_unit_iters=True)
    sch.vectorize(channel_vector)
    parallel = sch.fuse(n, o_outer, p_outer)
    sch.parallel(parallel)
    init = sch.decompose_reduction(conv_block, i_outer)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.tensorize(o_lane, params.dot.name)
    sch.unroll(p_inner)
    sch.unroll(o_vec)
    knobs.unroll(parallel)


def average_pool(sch: s_tir.Schedule, lanes: int) -> None:
    """The int8 global average pool (model/quantized.py): channels innermost and vectorized, the
    spatial sum outside them."""
    total, average = sch.get_sblock("pool_sum"), sch.get_sblock("pool_average")
    n, _, _, c, rh, rw = sch.get_loops(total)
    sch.reorder(n, rh, rw, c)
    init = sch.decompose_reduction(total, rh)
    for block in (init, average):
        *_, channel = sch.get_loops(block)
        _, vector = sch.split(channel, heuristic_split(extent(sch, channel), [lanes]))
        sch.vectorize(vector)


# The CPU families' templates (x86, arm_cpu): fp32 from cpu.py, int8 from here; the families differ
# only in their parameters.
CPU_TEMPLATES = {
    "depthwise": cpu.depthwise,
    "conv": cpu.conv,
    "int8_depthwise": depthwise,
    "int8_conv": conv,
}
