"""Untuned CPU schedules of the functions outside the templates: the classifier, softmax and
pooling, and layout changes. One rule per kind for every CPU family (x86 and ARM); a family's
`CpuParams` gives only sizes.

DLight's CPU rules, which these replace, were the fixed cost of every untuned build (2-core AMD
EPYC, znver3, 1 thread): its reduction rule nests softmax's max, exps and sum under each of the
1000 outputs (1000x the work, ~4 ms of CPU per call at any alpha and resolution), and its GEMV rule
reduces the classifier one output at a time down a column of W (one cache line per multiply-add,
1.76 ms at 1.0/224)."""

from __future__ import annotations

from tvm import s_tir

from tvm_mobilenet.tasks.blocks import DENSE_BLOCK

from .cpu import CpuParams, finish, pow2_divisor
from .fusion import COMM_REDUCE, SPATIAL, inline_prologue_and_epilogue
from .knobs import Knobs, extent

# Softmax and pooling run their elementwise work on one thread below this many elements: waking
# the pool costs more than the work.
REDUCTION_PARALLEL_MIN_ELEMENTS = 1 << 16


def dense_applies(sch: s_tir.Schedule) -> bool:
    """A classifier block reading x[.., k] and W[k, n], n innermost in W (the relax builder's and
    the normalised ONNX / TFLite / PyTorch classifiers), or W packed [n / lanes, k, n % lanes]
    (tasks/weight_packing.pack_dense_weights)."""
    try:
        block = sch.get(sch.get_sblock(DENSE_BLOCK))
    except Exception:  # no such block
        return False
    kinds = [int(iv.iter_type) for iv in block.iter_vars]
    if len(block.reads) != 2 or kinds[-1] != COMM_REDUCE or any(kinds[:-1]):
        return False
    n_var, k_var = block.iter_vars[-2].var, block.iter_vars[-1].var
    weight = block.reads[1].region
    if len(weight) == 3:
        return weight[1].min.same_as(k_var)
    return (
        len(weight) == 2
        and weight[0].min.same_as(k_var)
        and weight[1].min.same_as(n_var)
        and int(weight[1].extent) == 1
    )


def dense(sch: s_tir.Schedule, params: CpuParams, tuning: bool) -> None:
    """out[.., n] = epilogue(bias[n] + sum_k x[.., k] * W[k, n]): a register tile of output vectors
    accumulated over all of k, the bias epilogue on the tile.

    N is W's contiguous axis, so it is the vector axis (lanes: the largest power of two dividing
    N, or the packed block, up to the register's). Tiles run in parallel even when small: the
    classifier reads every weight once, cold (1024 x 1000: 4 MB), and two cores pull more
    bandwidth than one. Measured in the model at 1 thread (znver3) against DLight's rule: 1024 x
    1000 1.76 -> 0.44 ms, 256 x 1000 0.42 -> 0.07 ms; aarch64 instructions at 1.0/224: 4.35 M ->
    0.51 M. With packed weights the tile takes its vectors from several blocks, each a sequential
    stream: more misses in flight than one stream gets (in the model, 1 thread: one block per
    tile 416-444 us, five 296-383)."""
    knobs = Knobs(sch, tuning)
    block = sch.get_sblock(DENSE_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, block)
    *outer, n, k = sch.get_loops(block)
    weight = sch.get(block).reads[1].source
    packed = int(weight.shape[-1]) if len(weight.shape) == 3 else 0
    lanes = pow2_divisor(packed or extent(sch, n), params.lanes)
    vectors_per_block = packed // lanes if packed else 1
    # packed: the tile's blocks (streams) x the vectors of each block; else output vectors
    (n_outer, *n_inner), factors = knobs.tile(
        n,
        [params.dense_vectors // vectors_per_block, vectors_per_block, lanes],
        max_innermost=params.lanes,
    )
    sch.reorder(*outer, n_outer, k, *n_inner)
    finish(sch, knobs, block, epilogue, [*outer, n_outer], n_outer, k, factors[-1])


def reductions(sch: s_tir.Schedule, params: CpuParams) -> bool:
    """Each block of a small reduction chain (softmax, mean pooling) in its own loop nest, in order,
    as legalization wrote it, except: a reduction whose innermost spatial axis has whole vectors
    (the mean over H, W of NHWC: the channels) loops over the reduction outside and the vectors
    inside, and elementwise blocks of REDUCTION_PARALLEL_MIN_ELEMENTS or more run in parallel.

    Scalar reductions (softmax's max and sum) and small elementwise blocks stay the plain loops
    of legalization, O(n) and vectorized by LLVM where it can (softmax at 1000 classes: 4.5-6.8 us
    per call on a 2-core AMD EPYC at 1 thread, the same with its elementwise blocks vectorized in
    TIR; 0.04 M aarch64 instructions). The mean of 7x7x1024: 18.7-19.8 us as legalized or under
    DLight, 4.6-5.7 us with channels innermost. Returns False, changing nothing, if a block is not
    a plain loop nest over its iteration variables."""
    plans = []
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        loops, iter_vars = sch.get_loops(block), sch.get(block).iter_vars
        kinds = [int(iv.iter_type) for iv in iter_vars]
        plain = len(loops) == len(iter_vars) and all(
            extent(sch, loop) == int(iv.dom.extent)
            for loop, iv in zip(loops, iter_vars, strict=False)  # lengths compared first
        )
        if not plain or any(kind not in (SPATIAL, COMM_REDUCE) for kind in kinds):
            return False
        plans.append((block, loops, kinds))
    for block, loops, kinds in plans:
        if COMM_REDUCE in kinds:
            _vector_reduction(sch, block, loops, kinds, params)
        elif _elements(sch, loops) >= REDUCTION_PARALLEL_MIN_ELEMENTS:
            sch.parallel(sch.fuse(*loops) if len(loops) > 1 else loops[0])
    return True


def _vector_reduction(sch: s_tir.Schedule, block, loops, kinds, params: CpuParams) -> None:
    spatial = [loop for loop, kind in zip(loops, kinds, strict=True) if kind == SPATIAL]
    reduce = [loop for loop, kind in zip(loops, kinds, strict=True) if kind == COMM_REDUCE]
    lanes = pow2_divisor(extent(sch, spatial[-1]), params.lanes) if spatial else 1
    if lanes == 1:
        return  # a scalar reduction: the serial loop as it is
    sch.reorder(*spatial[:-1], *reduce, spatial[-1])
    _, vector = sch.split(spatial[-1], [None, lanes])
    sch.vectorize(vector)
    sch.decompose_reduction(block, reduce[0])


def _elements(sch: s_tir.Schedule, loops) -> int:
    total = 1
    for loop in loops:
        total *= extent(sch, loop)
    return total


def injective(sch: s_tir.Schedule, params: CpuParams) -> None:
    """A single elementwise or layout-changing block: parallel over its two outer loops, from
    `params.parallel_min_elements` elements on."""
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))
    loops = sch.get_loops(block)
    if _elements(sch, loops) >= params.parallel_min_elements:
        sch.parallel(sch.fuse(*loops[:2]) if len(loops) > 1 else loops[0])
