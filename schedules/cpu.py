"""Depthwise and pointwise (and full) NHWC convolution templates for SIMD CPUs.

One implementation serves x86 (AVX2 / AVX-512) and ARM (NEON); a family passes only its
`CpuParams`. Layout (see tvm_mobilenet/network.py): NHWC activations, HWOI depthwise weights and
HWIO pointwise weights, so the channel loop is unit-stride everywhere and becomes the vector loop.

Both templates build a register tile: a few output columns (w) by a few channel vectors,
accumulated over the whole reduction and then passed through the fused bias + ReLU epilogue while
still hot, with padding read in place (the pad block is inlined: no padded copy in memory)."""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir

from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DENSE_BLOCK, DEPTHWISE_BLOCK

from .fusion import inline_prologue_and_epilogue
from .knobs import Knobs, extent


@dataclass(frozen=True)
class CpuParams:
    """What differs between CPU families."""

    lanes: int  # float32 lanes of one SIMD register
    max_vectors: int  # channel vectors per register tile (accumulators = columns x vectors)
    max_columns: int  # output columns per register tile
    # Load `lanes` input channels of each column as one vector and multiply-add by lane (NEON's
    # fmla by element) instead of broadcasting each input from memory (x86's vbroadcastss operand).
    lane_fma: bool = False
    # The classifier (matmul with [K, N] weights) without a record: output vectors per register
    # tile, kept in registers over all of K (0: DLight's rule, which reduces one output at a time).
    dense_vectors: int = 0


def _finish(
    sch: s_tir.Schedule,
    knobs: Knobs,
    conv,
    epilogue,
    parallel_loops,
    register_loop,
    reduction_start,
    vector_factor,
) -> None:
    """Shared tail: epilogue at the tile, parallel outer loops, vector channel loops, unrolling.

    Loop kinds are set before the reduction is split into init + update, because parallel and
    vectorize require a complete reduction block beneath them.
    """
    sch.reverse_compute_at(epilogue, register_loop, preserve_unit_loops=True)
    *_, channel = sch.get_loops(epilogue)
    _, channel_vector = sch.split(channel, [None, vector_factor], preserve_unit_iters=True)
    sch.vectorize(channel_vector)
    sch.vectorize(sch.get_loops(conv)[-1])
    parallel = sch.fuse(*parallel_loops)
    sch.parallel(parallel)
    knobs.unroll(parallel)
    sch.decompose_reduction(conv, reduction_start)  # the init loops keep the vector kind


def depthwise(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[n,h,w,c] = relu(bias[c] + sum_{kh,kw} in[n, h*s+kh, w*s+kw, c] * W[kh,kw,c])."""
    knobs = Knobs(sch, tuning)
    conv = sch.get_sblock(DEPTHWISE_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv)
    n, h, w, c, kh, kw, rc = sch.get_loops(conv)
    (c_outer, c_inner), c_factors = knobs.tile(
        c, [params.lanes], max_innermost=params.lanes * params.max_vectors
    )
    (w_outer, w_inner), _ = knobs.tile(w, [params.max_columns], max_innermost=params.max_columns)
    sch.reorder(n, h, w_outer, c_outer, kh, kw, rc, w_inner, c_inner)
    _finish(sch, knobs, conv, epilogue, [n, h, w_outer], c_outer, kh, c_factors[1])


def conv(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[n,h,w,o] = relu(bias[o] + sum_{kh,kw,i} in[n, h*s+kh, w*s+kw, i] * W[kh,kw,i,o]).

    Pointwise (1x1) and full convolutions: a GEMM over input channels with a
    columns x (vectors x lanes) register tile and the input channels split for cache reuse."""
    knobs = Knobs(sch, tuning)
    conv_block = sch.get_sblock(CONV_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv_block)
    n, h, w, o, kh, kw, i = sch.get_loops(conv_block)
    vectors = max(1, params.max_vectors // 2)
    (o_outer, o_vectors, o_lanes), o_factors = knobs.tile(
        o, [vectors, params.lanes], max_innermost=params.lanes
    )
    (w_outer, w_inner), _ = knobs.tile(w, [params.max_columns], max_innermost=params.max_columns)
    # A static property of the workload (not a knob): every replay of the trace takes this branch.
    # 1x1 only: a cached window of a padded 3x3 input would be read out of bounds at the borders.
    by_lane = (
        params.lane_fma
        and extent(sch, i) % params.lanes == 0
        and extent(sch, kh) == extent(sch, kw) == 1
    )
    lane = []
    if by_lane:
        i, i_lane = sch.split(i, [None, params.lanes], preserve_unit_iters=True)
        lane = [i_lane]
    block_i = 64 // params.lanes if by_lane else 64  # 64 input channels per block either way
    (i_outer, i_inner), _ = knobs.tile(i, [min(extent(sch, i), block_i)], max_innermost=512)
    # Output-channel tiles outermost: one tile's weights stay in cache across all rows.
    sch.reorder(
        n, o_outer, h, w_outer, i_outer, kh, kw, i_inner, *lane, w_inner, o_vectors, o_lanes
    )
    if by_lane:
        _cache_input_vectors(sch, conv_block, i_inner)
    _finish(sch, knobs, conv_block, epilogue, [n, o_outer, h], w_outer, i_outer, o_factors[2])


def _cache_input_vectors(sch: s_tir.Schedule, conv_block, i_inner) -> None:
    """Copy the tile's inputs (columns x `lanes` channels) once per step of `i_inner`, vectorized:
    LLVM then emits one vector load per column and `fmla v.4s, w.4s, in.s[k]` from it.

    "global" scope on purpose: TVM 0.27's LowerTVMBuiltin puts small global allocations on the
    stack (promoted to registers) but "local" ones in TVMBackendAllocWorkspace, and the loop then
    stored and reloaded the vectors (83 instead of 72 aarch64 instructions for 56 fmla)."""
    columns = sch.cache_read(conv_block, 0, "global")
    sch.compute_at(columns, i_inner, preserve_unit_loops=True)
    sch.vectorize(sch.get_loops(columns)[-1])


def dense(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[n, j] = bias[j] + sum_k in[n, k] * W[k, j]: a register tile of output vectors
    accumulated over all of k (the classifier, untuned)."""
    knobs = Knobs(sch, tuning)
    block = sch.get_sblock(DENSE_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, block)
    n, j, k = sch.get_loops(block)
    (j_outer, j_vectors, j_lanes), j_factors = knobs.tile(
        j, [params.dense_vectors, params.lanes], max_innermost=params.lanes
    )
    sch.reorder(n, j_outer, k, j_vectors, j_lanes)
    _finish(sch, knobs, block, epilogue, [n, j_outer], j_outer, k, j_factors[2])


def injective(sch: s_tir.Schedule) -> None:
    """A single elementwise or layout-changing block: parallel over its two outer loops."""
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))
    loops = sch.get_loops(block)
    sch.parallel(sch.fuse(*loops[:2]) if len(loops) > 1 else loops[0])
