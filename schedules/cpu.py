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

from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK

from .fusion import inline_prologue_and_epilogue
from .knobs import Knobs, extent


@dataclass(frozen=True)
class CpuParams:
    """What differs between CPU families."""

    lanes: int  # float32 lanes of one SIMD register
    max_vectors: int  # channel vectors per register tile (accumulators = columns x vectors)
    max_columns: int  # output columns per register tile


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
    (i_outer, i_inner), _ = knobs.tile(i, [min(extent(sch, i), 64)], max_innermost=512)
    # Output-channel tiles outermost: one tile's weights stay in cache across all rows.
    sch.reorder(n, o_outer, h, w_outer, i_outer, kh, kw, i_inner, w_inner, o_vectors, o_lanes)
    _finish(sch, knobs, conv_block, epilogue, [n, o_outer, h], w_outer, i_outer, o_factors[2])


def injective(sch: s_tir.Schedule) -> None:
    """A single elementwise or layout-changing block: parallel over its two outer loops."""
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))
    loops = sch.get_loops(block)
    sch.parallel(sch.fuse(*loops[:2]) if len(loops) > 1 else loops[0])
