"""Bring an imported Relax graph into the form the project's tasks expect: NHWC/HWIO convolutions
with BatchNorm folded into them, so each fused task is one conv2d (+ bias, activation) that the
templates in `schedules/` handle, as in `network.py` (which says why NHWC)."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

NHWC_CONV = {"relax.nn.conv2d": ["NHWC", "HWIO"]}
_ELEMENTWISE_BINARY = (
    "relax.add",
    "relax.subtract",
    "relax.multiply",
    "relax.divide",
    "relax.maximum",
    "relax.minimum",
)


def _rank(expr) -> int | None:
    ndim = getattr(getattr(expr, "ty", None), "ndim", -1)
    return None if ndim is None or ndim < 0 else int(ndim)


def _const_like(value: float, rank: int, dtype: str) -> tvm.ir.expr.GenericConst:
    return relax.const(np.full((1,) * rank, value, dtype=dtype))


@relax.expr_functor.mutator
class _RankMatchedOperands(relax.PyExprMutator):
    """Give elementwise ops rank-matched operands, which ConvertLayout can transpose.

    TFLite graphs add 1-D biases to NHWC tensors and clip for ReLU6; ConvertLayout knows no layout
    for a rank-1 constant or for clip, so it would wrap every bias-add and activation in two
    transposes.
    """

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = self.visit_expr_post_order(call)
        name = getattr(call.op, "name", "")
        if name == "relax.clip" and _rank(call.args[0]) is not None:
            x, rank, dtype = call.args[0], _rank(call.args[0]), str(call.args[0].ty.dtype)
            low, high = (float(getattr(arg.value, "value", arg.value)) for arg in call.args[1:3])
            lower = self.builder_.emit(relax.op.maximum(x, _const_like(low, rank, dtype)))
            return relax.op.minimum(lower, _const_like(high, rank, dtype))
        if name in _ELEMENTWISE_BINARY:
            return relax.Call(
                call.op, [self._broadcast_const(arg, call) for arg in call.args], call.attrs
            )
        return call

    @staticmethod
    def _broadcast_const(arg, call: relax.Call):
        rank = max(_rank(a) or 0 for a in call.args)
        if not isinstance(arg, tvm.ir.expr.GenericConst) or _rank(arg) >= rank:
            return arg
        data = arg.value.numpy()
        return relax.const(data.reshape((1,) * (rank - data.ndim) + data.shape))


def _rank_matched(mod: tvm.IRModule) -> tvm.IRModule:
    mutator = _RankMatchedOperands(mod)
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            mutator.builder_.update_func(gvar, mutator.visit_expr(func))
    return mutator.builder_.get()


def _has_non_nhwc_conv(mod: tvm.IRModule) -> bool:
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.conv2d":
            found.append(expr.attrs.data_layout != "NHWC" or expr.attrs.kernel_layout != "HWIO")

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return any(found)


def normalize(mod: tvm.IRModule) -> tvm.IRModule:
    """NHWC/HWIO convolutions (transposes only at the graph's edges), BatchNorm folded into them."""
    folded = tvm.transform.Sequential(
        [
            # conv2d -> batch_norm (PyTorch, ONNX) becomes conv2d + add
            relax.transform.FoldBatchnormToConv2D(),
            relax.transform.DecomposeOpsForInference(),  # any BatchNorm left: inference arithmetic
            relax.transform.FoldConstant(),
        ]
    )(mod)
    if _has_non_nhwc_conv(folded):
        folded = relax.transform.ConvertLayout(NHWC_CONV)(_rank_matched(folded))
    passes = [relax.transform.FoldConstant(), relax.transform.DeadCodeElimination()]
    return tvm.transform.Sequential(passes)(folded)
