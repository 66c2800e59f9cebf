"""Pre-pack pointwise weights per block of output channels: HWIO [1, 1, I, O] -> [O/B, 1, 1, I, B].

Why: in HWIO, the weights one output-channel tile needs are a column of I short runs, O floats
apart. At O = 1024 that stride is 4 KB: every run lands in the same L1 set and on a new page, so the
tile thrashes L1 and the hardware prefetcher cannot follow (measured here: 7x7x1024 pointwise at 139
GFLOP/s tuned, against ~300 for the other layers). Packed, a tile's weights are one sequential
stream (the same blocking ONNX Runtime and XNNPACK use); the 7x7 layers run 2x faster, the others
2-10%.

The rewrite runs on the fused module (so tasks and compilation see the same functions): each fused
pointwise function gets its weight buffer re-laid out (`transform_layout` on its conv block, which
the templates and MetaSchedule's generated space schedule unchanged), and its constant weight
argument is packed with numpy at compile time.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, s_tir, tirx  # noqa: F401  (tirx: PrimFunc)

from tvm_mobilenet.schedules.cpu_untuned import dense_applies
from tvm_mobilenet.schedules.x86 import AVX512
from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DENSE_BLOCK

BLOCK = 64  # output channels per block: 16 NEON vectors, a multiple of their tiles
# AVX2 without AVX-512: the block is one vector of 8 channels, so a register tile's 2 vectors read
# two contiguous streams (not 64 B of every 256 B, as with 64). Measured on a 2-core EPYC (znver3),
# untuned, 1 thread, calling-thread CPU time, 64 -> 16: MobileNet 0.5/128 1.82-2.00 -> 1.50-1.73 ms,
# 0.75/160 5.7-7.0 -> 5.2-6.5, 1.0/224 17.5-18.1 -> 16.6-17.9 (8 of 8 interleaved comparisons
# faster). 16 -> 8 (2026-11-27): a layer's weights arrive cold and two streams keep more misses in
# flight than one; in the model 7x7x1024 1869 -> 1749 us at 1 thread and 967 -> 906 at 2, untuned
# 1.0/224 in turns 0.4-0.7 ms faster at 1 thread and 0.2-0.3 at 2, tuned (each block's default
# run) 0.03-0.42 and 0.19-0.61.
AVX2_BLOCK = 8
# AVX-512: the width of its 1x1 register tiles (2 vectors of 16, schedules/x86.py), so a tile's
# weights are one stream. Measured on a 2-core AMD EPYC (znver4, 2026-11-27), untuned, in the model:
# with 7 x 2 tiles, 32 instead of 64 took the 14x14x256 -> 512 layer from 479 to 453 us at 1 thread
# (the earlier 6 x 4 tiles with 64: 467-473); with those 6 x 4 tiles, 32 alone gained 0.3-0.6 %.
AVX512_BLOCK = AVX512.pixel_vectors * AVX512.lanes  # 32
WEIGHT_PARAM = 1  # fused conv functions take (data, weight, bias..., out)


def block_for(target: tvm.target.Target) -> int:
    """Output channels per packed block for a CPU target: AVX512_BLOCK on x86 with AVX-512,
    AVX2_BLOCK with AVX2 only, else BLOCK."""
    from tvm.target.codegen import llvm_cpu_has_features

    with target:
        if llvm_cpu_has_features("avx512f", target):
            return AVX512_BLOCK
        return AVX2_BLOCK if llvm_cpu_has_features("avx2", target) else BLOCK


def pack(weight: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """HWIO [KH, KW, I, O] -> [O/block, KH, KW, I, block]."""
    kh, kw, cin, cout = weight.shape
    return np.ascontiguousarray(
        weight.reshape(kh, kw, cin, cout // block, block).transpose(3, 0, 1, 2, 4)
    )


def unpack(packed: np.ndarray) -> np.ndarray:
    """The inverse of `pack`."""
    blocks, kh, kw, cin, block = packed.shape
    return np.ascontiguousarray(
        packed.transpose(1, 2, 3, 0, 4).reshape(kh, kw, cin, blocks * block)
    )


def hwio_shape(shape: list[int]) -> list[int]:
    """The HWIO shape of a weight buffer, packed (fp32 or int8, below) or not."""
    if len(shape) == 5:
        blocks, kh, kw, cin, block = shape
        return [kh, kw, cin, blocks * block]
    if len(shape) == 6:
        blocks, kh, kw, inner, lanes, depth = shape
        return [kh, kw, inner * depth, blocks * lanes]
    return list(shape)


def _conv_block_reading(func, weight_rank: int, data_dtypes: tuple[str, ...]) -> bool:
    """A fused NHWC conv (one of ours) with a weight of `weight_rank` and data of `data_dtypes`."""
    if not isinstance(func, tvm.tirx.PrimFunc) or len(func.params) <= WEIGHT_PARAM:
        return False
    if len(func.params[WEIGHT_PARAM].ty.shape) != weight_rank:
        return False
    if str(func.params[0].ty.dtype) not in data_dtypes:
        return False
    try:
        s_tir.Schedule(tvm.IRModule({"main": func})).get_sblock(CONV_BLOCK)
    except Exception:  # no such block: not one of ours
        return False
    return True


def _weight_shape(func) -> list[int]:
    return [int(d) for d in func.params[WEIGHT_PARAM].ty.shape]


def is_packed_pointwise(func) -> bool:
    """A fused float32 pointwise NHWC conv whose weights `pack_pointwise_weights` packed."""
    return _conv_block_reading(func, 5, ("float32",)) and _weight_shape(func)[1:3] == [1, 1]


def _packable(func, block: int) -> bool:
    """A fused float pointwise NHWC conv whose output channels fill more than one block (int8
    convolutions get their own packing, below)."""
    if not _conv_block_reading(func, 4, ("float32", "float16")):
        return False
    shape = _weight_shape(func)
    return shape[:2] == [1, 1] and shape[3] % block == 0 and shape[3] != block


def _relayout(func: tvm.tirx.PrimFunc, index_map, block: str = CONV_BLOCK) -> tvm.tirx.PrimFunc:
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    sch.transform_layout(sch.get_sblock(block), ("read", 1), index_map)  # reads (data, W)
    return sch.mod["main"]


def _calls(mod: tvm.IRModule):
    """(call, callee GlobalVar) of every call_tir in the module's Relax functions."""
    call_tir = tvm.ir.Op.get("relax.call_tir")
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and expr.op.same_as(call_tir):
            found.append((expr, expr.args[0]))

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return found


def rewrite_weights(
    mod: tvm.IRModule, packable, weight_ok, relayout, pack, suffix: str = ""
) -> tvm.IRModule:
    """Give every function `packable(func)` whose every call passes a constant weight with
    `weight_ok(array)` the layout `relayout(func)` (its name + `suffix`), and its calls the weight
    `pack(array)`."""
    calls = _calls(mod)

    def constant_ok(call) -> bool:
        weight = call.args[1].fields[WEIGHT_PARAM]
        return isinstance(weight, tvm.ir.expr.Constant) and weight_ok(weight.value.numpy())

    candidates = {gv for _, gv in calls if packable(mod[gv])}
    # A function called with a weight that is not a constant (a runtime parameter) stays as it is.
    candidates -= {gv for call, gv in calls if gv in candidates and not constant_ok(call)}
    if not candidates:
        return mod
    # The packed functions replace the old ones under new GlobalVars (a GlobalVar carries its
    # function's signature), keeping their names.
    kept = {gv: func for gv, func in mod.functions.items() if gv not in candidates}
    builder = relax.BlockBuilder(tvm.IRModule(kept, attrs=mod.attrs, global_infos=mod.global_infos))
    renamed = {gv: builder.add_func(relayout(mod[gv]), gv.name_hint + suffix) for gv in candidates}

    @relax.expr_functor.mutator
    class _Rewriter(relax.PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if not (
                isinstance(call.op, tvm.ir.Op)
                and call.op.name == "relax.call_tir"
                and call.args[0] in renamed
            ):
                return call
            args = list(call.args[1].fields)
            args[WEIGHT_PARAM] = relax.const(pack(args[WEIGHT_PARAM].value.numpy()))
            return relax.Call(
                call.op,
                [renamed[call.args[0]], relax.Tuple(args), *call.args[2:]],
                call.attrs,
                call.ty_args,
            )

    rewriter = _Rewriter(builder.get())
    for gv, func in kept.items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
    return rewriter.builder_.get()


def pack_pointwise_weights(block: int = BLOCK) -> tvm.transform.Pass:
    """A pass packing the constant weights of every fused float pointwise conv per `block` output
    channels (`block_for(target)`; see the module docstring)."""

    @tvm.transform.module_pass(opt_level=0, name="PackPointwiseWeights")
    def apply(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
        return rewrite_weights(
            mod,
            lambda func: _packable(func, block),
            lambda weight: True,
            lambda func: _relayout(func, lambda kh, kw, i, o: [o // block, kh, kw, i, o % block]),
            lambda weight: pack(weight, block),
        )

    return apply


# ---------------------------------------------------------------------------- classifier
# The classifier reads each of its weights once per call, cold (1024 x 1000: 4 MB, after the
# whole network has passed through the caches), so its speed in the model is how fast the core
# streams them. In [K, N] a tile of output vectors needs one short run of every row, N floats
# apart (4 KB at 1000 classes: a new page per row). Packed per DENSE_LANES outputs, [N/8, K, 8],
# each block is one sequential stream, and the untuned rule reads several blocks at once
# (schedules/cpu_untuned.dense). Measured in the model (1.0/224, replayed calls, 2-core AMD EPYC
# znver3, 2026-11-27): 1 thread 455-602 -> 296-383 us, 2 threads 280-345 -> 219-230 us.
DENSE_LANES = 8  # outputs per packed block: one AVX2 vector, two NEON ones


def pack_dense(weight: np.ndarray, lanes: int = DENSE_LANES) -> np.ndarray:
    """[K, N] -> [N/lanes, K, lanes]."""
    depth, outputs = weight.shape
    return np.ascontiguousarray(weight.reshape(depth, outputs // lanes, lanes).transpose(1, 0, 2))


def unpack_dense(packed: np.ndarray) -> np.ndarray:
    """The inverse of `pack_dense`."""
    blocks, depth, lanes = packed.shape
    return np.ascontiguousarray(packed.transpose(1, 0, 2).reshape(depth, blocks * lanes))


def is_packed_dense(func) -> bool:
    """A fused float classifier whose weights `pack_dense_weights` packed."""
    return _float_dense(func, weight_rank=3)


def _float_dense(func, weight_rank: int) -> bool:
    """A fused float classifier (the untuned dense rule's block) with a weight of `weight_rank`."""
    if not isinstance(func, tvm.tirx.PrimFunc) or len(func.params) <= WEIGHT_PARAM:
        return False
    if len(func.params[WEIGHT_PARAM].ty.shape) != weight_rank:
        return False
    if str(func.params[0].ty.dtype) not in ("float32", "float16"):
        return False
    return dense_applies(s_tir.Schedule(tvm.IRModule({"main": func})))


def _dense_packable(func) -> bool:
    """A classifier reading W[k, n] (n contiguous) with more than one block of outputs."""
    if not _float_dense(func, weight_rank=2):
        return False
    outputs = _weight_shape(func)[1]
    return outputs % DENSE_LANES == 0 and outputs != DENSE_LANES


def pack_dense_weights() -> tvm.transform.Pass:
    """A pass packing the constant weights of the fused float classifier per DENSE_LANES outputs."""

    @tvm.transform.module_pass(opt_level=0, name="PackDenseWeights")
    def apply(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
        return rewrite_weights(
            mod,
            _dense_packable,
            lambda weight: True,
            lambda func: _relayout(
                func, lambda k, n: [n // DENSE_LANES, k, n % DENSE_LANES], DENSE_BLOCK
            ),
            pack_dense,
        )

    return apply


# ---------------------------------------------------------------------------- int8
# The int8 pointwise template (schedules/cpu_int8.py) tensorizes its reduction with a dot-product
# intrinsic that multiplies D input channels of one pixel with an L x D block of weights and
# accumulates L outputs (schedules/intrin.py): the weights are packed so that each block is one
# contiguous vector load, [O/L][KH][KW][I/D][L][D].


def pack_int8(weight: np.ndarray, lanes: int, depth: int) -> np.ndarray:
    """HWIO [KH, KW, I, O] -> [O/L, KH, KW, I/D, L, D]."""
    kh, kw, cin, cout = weight.shape
    blocks = weight.reshape(kh, kw, cin // depth, depth, cout // lanes, lanes)
    return np.ascontiguousarray(blocks.transpose(4, 0, 1, 2, 5, 3))


def unpack_int8(packed: np.ndarray) -> np.ndarray:
    """The inverse of `pack_int8`."""
    blocks, kh, kw, inner, lanes, depth = packed.shape
    return np.ascontiguousarray(
        packed.transpose(1, 2, 3, 5, 0, 4).reshape(kh, kw, inner * depth, blocks * lanes)
    )


def pack_int8_pointwise_weights(dot) -> tvm.transform.Pass:
    """A pass packing the constant weights of fused int8 pointwise convs for `dot` (a
    schedules.intrin.DotIntrinsic): those whose data is the dtype it multiplies, whose channels it
    divides, and whose weights it multiplies exactly (the AVX2 sign trick: no -128)."""
    lanes, depth = dot.lanes, dot.depth

    def packable(func) -> bool:
        if not _conv_block_reading(func, 4, (dot.activation,)):
            return False
        kh, kw, cin, cout = _weight_shape(func)
        return (kh, kw) == (1, 1) and cin % depth == 0 and cout % lanes == 0

    def relayout(func):
        return _relayout(
            func, lambda kh, kw, i, o: [o // lanes, kh, kw, i // depth, o % lanes, i % depth]
        )

    @tvm.transform.module_pass(opt_level=0, name="PackInt8PointwiseWeights")
    def apply(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
        return rewrite_weights(
            mod,
            packable,
            lambda weight: int(weight.min()) >= dot.weight_min,
            relayout,
            lambda weight: pack_int8(weight, lanes, depth),
        )

    return apply
