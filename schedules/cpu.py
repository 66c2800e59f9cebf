"""Depthwise and pointwise (and full) NHWC convolution templates for SIMD CPUs.

One implementation serves x86 (AVX2 / AVX-512) and ARM (NEON); a family passes only its
`CpuParams`. Layout (see tvm_mobilenet/network.py): NHWC activations, HWOI depthwise weights and
HWIO pointwise weights, so the channel loop is unit-stride everywhere and becomes the vector loop.

Both templates build a register tile: a few output columns (w) by a few channel vectors,
accumulated over the whole reduction and then passed through the fused bias + ReLU epilogue while
still hot, with padding read in place (the pad block is inlined: no padded copy in memory)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tvm import s_tir

from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK

from .fusion import SPATIAL, inline_prologue_and_epilogue
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
    # tile, kept in registers over all of K (cpu_untuned.dense).
    dense_vectors: int = 8
    # Convolution register tile. 0: the first rule (max_vectors // 2 channel vectors, the largest
    # divisor of the width up to max_columns as columns). Otherwise the vector registers the tile
    # may use: columns x vectors accumulators + one register per weight vector + one broadcast
    # input (`_conv_tile`); columns in [min_columns, max_columns], the last column tile padded.
    tile_registers: int = 0
    min_columns: int = 3
    # 1x1 convolutions: tile the pixels (h x w as one axis, the GEMM's M) instead of each row's
    # columns, so every width gets the widest register tile with little padding (`pixel_tile`).
    pixel_tiles: bool = False
    # 1x1 pixel tiles: at most this many channel vectors (0: as many as the registers allow).
    pixel_vectors: int = 0
    depthwise_columns: int = 0  # depthwise tile columns (0: max_columns)
    # Depthwise register tile: channel vectors, the last column tile padded (0: one vector and
    # columns dividing the width).
    depthwise_vectors: int = 0
    # Untuned kernels below this many flops (layout changes: elements) run on the calling thread
    # only: waking the pool and the barrier after the kernel cost more than a few-microsecond
    # kernel gains, and much more when a thread of the pool is descheduled (0: always parallel).
    parallel_min_flops: float = 0
    parallel_min_elements: int = 0
    # The target's cores (`for_target`): a 1x1 layer with pixel tiles and weights outermost splits
    # its pixels into this many parts outermost, so each core writes the pixels the next layers
    # read on that core (`_pixels_per_core`).
    cores: int = 1
    # Wide float32 1x1 layers (with bias, ReLU / ReLU6 or none) run as one-level Strassen kernels
    # at compile time (schedules/strassen.py, tasks/strassen.py) instead of these templates.
    strassen: bool = False
    # Strassen kernels: each register-tile pass also prefetches its share of the weight block this
    # many blocks ahead into L2, so the weights that arrive from memory come while the tiles compute
    # (0: none; schedules/strassen.py).
    strassen_prefetch: int = 0
    # Strassen only where each core has at least this many pixels: every core reads all of the
    # 1.75x larger weight operands, so a small map is bound by their arrival (0: any map).
    strassen_min_pixels: int = 0


def for_target(params: CpuParams, target) -> CpuParams:
    """`params` with the target's core count (its "num-cores", else 1)."""
    return replace(params, cores=int(target.attrs.get("num-cores") or 1))


def finish(
    sch: s_tir.Schedule,
    knobs: Knobs,
    conv,
    epilogue,
    parallel_loops,
    register_loop,
    reduction_start,
    vector_factor,
    parallel: bool = True,
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
    outer = sch.fuse(*parallel_loops)
    if parallel:
        sch.parallel(outer)
    knobs.unroll(outer)
    sch.decompose_reduction(conv, reduction_start)  # the init loops keep the vector kind


def _parallel_worth_it(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> bool:
    """Whether the template runs its outer loops on the thread pool: always when tuning (the runner
    measures), untuned only from `params.parallel_min_flops` on."""
    if tuning or not params.parallel_min_flops:
        return True
    from tvm.s_tir.analysis import estimate_tir_flops

    return float(estimate_tir_flops(sch.mod)) >= params.parallel_min_flops


def depthwise(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[n,h,w,c] = relu(bias[c] + sum_{kh,kw} in[n, h*s+kh, w*s+kw, c] * W[kh,kw,c])."""
    knobs = Knobs(sch, tuning)
    parallel = _parallel_worth_it(sch, params, tuning)
    conv = sch.get_sblock(DEPTHWISE_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv)
    n, h, w, c, kh, kw, rc = sch.get_loops(conv)
    columns = params.depthwise_columns or params.max_columns
    # `depthwise_vectors` channel vectors (1 if they do not divide the channels) by `columns`, the
    # last column tile padded (7x7x1024 on AVX2, 2 vectors: 62 -> 40 us).
    vectors = params.depthwise_vectors or 1
    if extent(sch, c) % (vectors * params.lanes):
        vectors = 1
    (c_outer, c_inner), c_factors = knobs.tile(
        c, [vectors * params.lanes], max_innermost=params.lanes * params.max_vectors
    )
    if params.depthwise_vectors:
        default = min(columns, extent(sch, w))
        w_outer, w_inner = knobs.padded(w, list(range(1, columns + 1)), default)
    else:
        (w_outer, w_inner), _ = knobs.tile(w, [columns], max_innermost=columns)
    sch.reorder(n, h, w_outer, c_outer, kh, kw, rc, w_inner, c_inner)
    finish(sch, knobs, conv, epilogue, [n, h, w_outer], c_outer, kh, c_factors[1], parallel)


def conv(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[n,h,w,o] = relu(bias[o] + sum_{kh,kw,i} in[n, h*s+kh, w*s+kw, i] * W[kh,kw,i,o]).

    Pointwise (1x1) and full convolutions: a GEMM over input channels with a
    columns x (vectors x lanes) register tile and the input channels split for cache reuse."""
    knobs = Knobs(sch, tuning)
    parallel = _parallel_worth_it(sch, params, tuning)
    conv_block = sch.get_sblock(CONV_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv_block)
    # Static properties of the workload (not knobs): every replay of the trace takes this branch.
    if params.pixel_tiles and _fuse_pixels(sch, conv_block, epilogue):
        n, pixels, o, kh, kw, i = sch.get_loops(conv_block)
        rows, width = [], pixels
        # Loop over tiles of the larger of input and weights outermost: it is read once, the
        # smaller one again for each of its tiles, from cache (input >= weights, both x channels).
        pixels_outer = extent(sch, pixels) >= extent(sch, o)
        channel_vectors = extent(sch, o) // params.lanes
        parts = []  # the pixels' per-core parts, outermost
        if not pixels_outer and _pixels_per_core(extent(sch, pixels), channel_vectors, params):
            part, width = sch.split(pixels, [params.cores, None], preserve_unit_iters=True)
            parts = [part]
        columns, vectors = pixel_tile(extent(sch, width), channel_vectors, params)
    else:
        n, h, w, o, kh, kw, i = sch.get_loops(conv_block)
        rows, width, parts = [h], w, []
        columns, vectors = _row_tile(extent(sch, w), extent(sch, o) // params.lanes, params)
        pixels_outer = False
    (o_outer, o_vectors, o_lanes), o_factors = knobs.tile(
        o, [vectors, params.lanes], max_innermost=params.lanes
    )
    if params.tile_registers:
        choices = range(1, params.max_columns + 1)
        if parts:  # a padded tile would cross into the next core's part: its epilogue would race
            choices = [c for c in choices if extent(sch, width) % c == 0]
        w_outer, w_inner = knobs.padded(width, list(choices), columns)
    else:
        (w_outer, w_inner), _ = knobs.tile(
            width, [params.max_columns], max_innermost=params.max_columns
        )
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
    # Otherwise output-channel tiles outermost: one tile's weights stay in cache across all rows.
    outer = [n, w_outer, o_outer] if pixels_outer else [n, *parts, o_outer, *rows, w_outer]
    inner = [i_outer, kh, kw, i_inner, *lane, w_inner, o_vectors, o_lanes]
    sch.reorder(*outer, *inner)
    if by_lane:
        _cache_input_vectors(sch, conv_block, i_inner)
    parallel_loops = outer[:-1] if rows else outer  # rows: the register tile loop stays serial
    finish(
        sch, knobs, conv_block, epilogue, parallel_loops, outer[-1], i_outer, o_factors[2], parallel
    )


def _pixels_per_core(pixels: int, channel_vectors: int, params: CpuParams) -> bool:
    """Whether a weights-outer 1x1 layer splits its pixels into one part per core, outermost: when
    they split evenly, each part's register tile covers it without padding (the epilogue of a
    padded tile would write pixels of the next part, racing its core; tuning then only samples
    tiles that divide the part) and keeps as many accumulators at work as the whole map's tile
    (14x14 on 2 cores: 7 x 2 either way; 8x8: 32 pixels in 7-pixel tiles, padded: no split).
    Static properties of the workload: every replay of the trace takes the same branch.

    With the weights outermost the parallel loop would give each core half the output channels of
    every pixel, and the next depthwise layer (parallel over rows) and 1x1 layer (reading every
    channel of its pixels) would take half their input from the other core's cache. Per-core
    pixels keep it on the core that wrote it, at the price of each core reading all the weights.
    Measured on a 2-core AMD EPYC (Zen 4), 2026-11-27, MobileNet 1.0/224 untuned, the six 14x14
    layers split, in turns: 2 threads 0-2 % faster, 4.5-5.3 % in the machine's slow phases (when
    data moving between its two cores is slow); 1 thread level. The 7x7 layers (49 pixels) stay."""
    if params.cores < 2 or pixels % params.cores:
        return False
    part = pixels // params.cores
    columns, vectors = pixel_tile(part, channel_vectors, params)
    whole = pixel_tile(pixels, channel_vectors, params)
    # A part its tile divides keeps all columns x vectors accumulators at work.
    return part % columns == 0 and columns * vectors >= _useful_accumulators(*whole, pixels)


def _useful_accumulators(columns: int, vectors: int, pixels: int) -> float:
    """Accumulators of a columns x vectors tile doing useful work over `pixels` (padding lost)."""
    return columns * vectors * pixels / (-(-pixels // columns) * columns)


def _fuse_pixels(sch: s_tir.Schedule, conv_block, epilogue) -> bool:
    """For a 1x1 convolution whose epilogue is elementwise over its NHWC output: make h x w one
    pixel axis in the convolution, its result buffer and the epilogue (so the epilogue computed at
    a pixel tile covers exactly that tile); whether it did."""
    n, h, w, o, kh, kw, _ = sch.get_loops(conv_block)
    if extent(sch, kh) != 1 or extent(sch, kw) != 1:
        return False
    shape = [extent(sch, loop) for loop in (n, h, w, o)]
    iters = sch.get(epilogue).iter_vars
    if [int(v.dom.extent) for v in iters] != shape or any(v.iter_type != SPATIAL for v in iters):
        return False  # not one data-parallel iteration per output element
    pixels_as_one_axis(sch, conv_block, epilogue)
    return True


def pixels_as_one_axis(sch: s_tir.Schedule, conv_block, epilogue) -> None:
    """Make the output rows and columns one pixel axis p = h * width + w in the convolution's own
    iteration domain, its result buffer and the epilogue.

    A fused loop would bind h, w by // and %, and an (h, w) epilogue computed at a tile of pixels
    that straddles two rows would cover the rows' bounding box, re-running it on pixels of other
    tiles (found under qemu: 6x6 maps with 4-pixel tiles); tensorize also needs plain loop
    variables."""
    width = extent(sch, sch.get_loops(conv_block)[2])
    sch.transform_block_layout(
        conv_block, lambda n, h, w, o, kh, kw, i: (n, h * width + w, o, kh, kw, i)
    )
    sch.transform_layout(conv_block, ("write", 0), lambda n, h, w, c: (n, h * width + w, c))
    sch.transform_block_layout(epilogue, lambda n, h, w, c: (n, h * width + w, c))


def _row_tile(width: int, channel_vectors: int, params: CpuParams) -> tuple[int, int]:
    """The untuned register tile of a row of `width` output columns."""
    if params.tile_registers:
        return _conv_tile(width, channel_vectors, params)
    return params.max_columns, max(1, params.max_vectors // 2)


def pixel_tile(pixels: int, channel_vectors: int, params: CpuParams) -> tuple[int, int]:
    """(pixels, channel vectors) of the untuned 1x1 register tile: the most accumulators doing
    useful work (padding of the last tile counted as lost), then the wider tile, at most
    `params.pixel_vectors` vectors. 14x14 on AVX2: 6 x 2 (196 of 198 pixels useful), where a row
    tile is 5 x 2 with a padded 4 x 2 last tile."""
    best = None
    for columns in range(1, min(params.max_columns, pixels) + 1):
        budget = (params.tile_registers - 1) // (columns + 1)
        if params.pixel_vectors:
            budget = min(budget, params.pixel_vectors)
        vectors = _tile_vectors(channel_vectors, budget)
        key = (-_useful_accumulators(columns, vectors, pixels), -columns)
        if best is None or key < best[0]:
            best = (key, columns, vectors)
    return best[1], best[2]


def _conv_tile(width: int, channel_vectors: int, params: CpuParams) -> tuple[int, int]:
    """(columns, channel vectors) of the untuned convolution register tile: the least padding of
    the width first, then the most accumulators that fit the registers, then the wider tile.

    Measured on AVX2 (znver3, 1 thread, each kernel alone, CPU time): 7x7x1024 pointwise 23 ->
    49-65 GFLOP/s (1x2 -> 4x2 padded), 5x5x512 22-24 -> 61-78 (1x2 -> 5x2), 14x14x512 43 -> 60-75
    (2x2 -> 5x2 padded); 3x4 (17 registers) spills: 50."""
    best = None
    low = max(1, min(params.min_columns, width))
    for columns in range(low, max(low, min(params.max_columns, width)) + 1):
        # columns x vectors accumulators + `vectors` weight registers + one broadcast input
        vectors = _tile_vectors(channel_vectors, (params.tile_registers - 1) // (columns + 1))
        padded_width = -(-width // columns) * columns
        key = (padded_width, -columns * vectors, -columns)
        if best is None or key < best[0]:
            best = (key, columns, vectors)
    return best[1], best[2]


def _tile_vectors(channel_vectors: int, budget: int) -> int:
    """Channel vectors of a register tile: the largest power of two within the budget that divides
    the channels (packed weight blocks are powers of two), else the largest divisor within it
    (24 channels, alpha 0.75: 3 vectors rather than 1)."""
    budget = max(1, min(budget, 8))
    power = pow2_divisor(max(channel_vectors, 1), budget)
    if power > 1:
        return power
    return max(d for d in range(1, budget + 1) if max(channel_vectors, 1) % d == 0)


def pow2_divisor(total: int, at_most: int) -> int:
    """The largest power of two that divides `total` and is at most `at_most`."""
    factor = 1
    while factor * 2 <= at_most and total % (factor * 2) == 0:
        factor *= 2
    return factor


def _cache_input_vectors(sch: s_tir.Schedule, conv_block, i_inner) -> None:
    """Copy the tile's inputs (columns x `lanes` channels) once per step of `i_inner`, vectorized:
    LLVM then emits one vector load per column and `fmla v.4s, w.4s, in.s[k]` from it.

    "global" scope on purpose: TVM 0.27's LowerTVMBuiltin puts small global allocations on the
    stack (promoted to registers) but "local" ones in TVMBackendAllocWorkspace, and the loop then
    stored and reloaded the vectors (83 instead of 72 aarch64 instructions for 56 fmla)."""
    columns = sch.cache_read(conv_block, 0, "global")
    sch.compute_at(columns, i_inner, preserve_unit_loops=True)
    sch.vectorize(sch.get_loops(columns)[-1])
