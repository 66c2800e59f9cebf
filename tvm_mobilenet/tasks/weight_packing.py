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

from tvm_mobilenet.tasks.blocks import CONV_BLOCK

BLOCK = 64  # output channels per block: 4 AVX-512 / 16 NEON vectors, a multiple of their tiles
# AVX2 without AVX-512: the block is one register tile's channels (2 vectors of 8), so each tile's
# weights are one contiguous stream instead of 64 B of every 256 B. Measured on a 2-core EPYC
# (znver3), untuned, 1 thread, calling-thread CPU time, 64 -> 16: MobileNet 0.5/128 1.82-2.00 ->
# 1.50-1.73 ms, 0.75/160 5.7-7.0 -> 5.2-6.5, 1.0/224 17.5-18.1 -> 16.6-17.9 (8 of 8 interleaved
# comparisons faster).
AVX2_BLOCK = 16
WEIGHT_PARAM = 1  # fused conv functions take (data, weight, bias..., out)


def block_for(target: tvm.target.Target) -> int:
    """Output channels per packed block for a CPU target: AVX2_BLOCK on x86 with AVX2 and without
    AVX-512, else BLOCK."""
    from tvm.target.codegen import llvm_cpu_has_features

    with target:
        avx2_only = llvm_cpu_has_features("avx2", target) and not llvm_cpu_has_features(
            "avx512f", target
        )
    return AVX2_BLOCK if avx2_only else BLOCK


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
    """The HWIO shape of a weight buffer, packed or not."""
    if len(shape) == 5:
        blocks, kh, kw, cin, block = shape
        return [kh, kw, cin, blocks * block]
    return list(shape)


def _packable(func, block: int) -> bool:
    """A fused pointwise NHWC conv whose output channels fill more than one block."""
    if not isinstance(func, tvm.tirx.PrimFunc) or len(func.params) <= WEIGHT_PARAM:
        return False
    shape = [int(d) for d in func.params[WEIGHT_PARAM].ty.shape]
    if len(shape) != 4 or shape[:2] != [1, 1] or shape[3] % block or shape[3] == block:
        return False
    try:
        s_tir.Schedule(tvm.IRModule({"main": func})).get_sblock(CONV_BLOCK)
    except Exception:  # no such block: not one of ours
        return False
    return True


def _packed_func(func: tvm.tirx.PrimFunc, block: int) -> tvm.tirx.PrimFunc:
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    sch.transform_layout(
        sch.get_sblock(CONV_BLOCK),
        ("read", 1),  # the block reads (padded data, weight)
        lambda kh, kw, i, o: [o // block, kh, kw, i, o % block],
    )
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


def pack_pointwise_weights(block: int = BLOCK) -> tvm.transform.Pass:
    """The pass that packs pointwise weights per `block` output channels (`block_for(target)`)."""

    @tvm.transform.module_pass(opt_level=0, name="PackPointwiseWeights")
    def pack_pass(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
        return _pack_module(mod, block)

    return pack_pass


def _pack_module(mod: tvm.IRModule, block: int) -> tvm.IRModule:
    """Pack the constant weights of every fused pointwise conv (see the module docstring)."""
    calls = _calls(mod)
    candidates = {gv for _, gv in calls if _packable(mod[gv], block)}
    # A function called with a weight that is not a constant (a runtime parameter) stays as it is.
    candidates -= {
        gv
        for call, gv in calls
        if gv in candidates
        and not isinstance(call.args[1].fields[WEIGHT_PARAM], tvm.ir.expr.Constant)
    }
    if not candidates:
        return mod
    # The packed functions replace the old ones under new GlobalVars (a GlobalVar carries its
    # function's signature), keeping their names.
    kept = {gv: func for gv, func in mod.functions.items() if gv not in candidates}
    builder = relax.BlockBuilder(tvm.IRModule(kept, attrs=mod.attrs, global_infos=mod.global_infos))
    renamed = {
        gv: builder.add_func(_packed_func(mod[gv], block), gv.name_hint) for gv in candidates
    }

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
            args[WEIGHT_PARAM] = relax.const(pack(args[WEIGHT_PARAM].value.numpy(), block))
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
