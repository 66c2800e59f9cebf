"""The model's input layout change (NCHW -> NHWC) runs inside the first convolution.

The model takes NCHW images (as ONNX Runtime, PyTorch and most image pipelines hand them over) and
computes in NHWC, so its first function was a transpose of the input, then the first convolution.
FuseOps never fuses an injective op into a following convolution, so the transpose wrote the
whole image to memory for the convolution to read it back: 80-105 us of a 1.0/224 call in the
model at 1 and 2 threads, where ONNX Runtime's first convolution reads NCHW directly (2-core AMD
EPYC, znver3, 2026-11-27, `bench --profile --peers ort`). This pass, run after FuseOps and before
FuseTIR, moves such a call into the fused function of the convolution it feeds, so FuseTIR makes
one function of both and the templates inline the transpose into the convolution's reads
(schedules/fusion.py), as they inline its padding.
"""

from __future__ import annotations

import tvm
from tvm import relax

INJECTIVE = 2  # AnnotateTIROpPattern: elementwise 0, broadcast 1, injective 2
CALL_TIR = tvm.ir.Op.get("relax.call_tir")


@tvm.transform.module_pass(opt_level=0, name="FuseInputLayoutIntoConsumer")
def fuse_input_layout(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
    """Move an injective call_tir of a graph input, used only as the first argument of one fused
    (Primitive) function, into that function."""
    main = mod["main"]
    if not isinstance(main.body, relax.SeqExpr) or len(main.body.blocks) != 1:
        return mod
    bindings = list(main.body.blocks[0].bindings)
    found = _layout_and_consumer(mod, main, bindings)
    if found is None:
        return mod
    layout, consumer = found
    callee_gvar = consumer.value.op
    name = f"fused_{layout.value.args[0].name_hint}_{callee_gvar.name_hint.removeprefix('fused_')}"
    builder = relax.BlockBuilder(mod)
    merged_gvar = builder.add_func(builder.normalize(_merged(layout.value, mod[callee_gvar])), name)
    mod = builder.finalize()
    graph_input = layout.value.args[1].fields[0]
    call = relax.Call(merged_gvar, [graph_input, *consumer.value.args[1:]])
    rewritten = [
        relax.VarBinding(b.var, call) if b.same_as(consumer) else b
        for b in bindings
        if not b.same_as(layout)
    ]
    block = type(main.body.blocks[0])(rewritten)
    mod["main"] = relax.Function(
        main.params, relax.SeqExpr([block], main.body.body), main.ret_ty, main.is_pure, main.attrs
    )
    mod = relax.transform.Normalize()(mod)
    return relax.transform.DeadCodeElimination(["main"])(mod)


def _layout_and_consumer(mod, main, bindings):
    """(the layout binding, its consumer's binding), or None."""
    for position, binding in enumerate(bindings):
        value = binding.value
        if not (isinstance(value, relax.Call) and value.op.same_as(CALL_TIR)):
            continue
        args = value.args[1].fields
        func = mod[value.args[0]]
        pattern = int((func.attrs or {}).get("op_pattern", 8))
        is_input = len(args) == 1 and any(args[0].same_as(param) for param in main.params)
        if not is_input or pattern > INJECTIVE:
            continue
        users = [b for b in bindings[position + 1 :] if _uses(b.value, binding.var)]
        if len(users) != 1 or not isinstance(users[0].value.op, relax.GlobalVar):
            continue
        consumer = users[0]
        callee = mod[consumer.value.op]
        first_arg_only = consumer.value.args[0].same_as(binding.var) and not any(
            arg.same_as(binding.var) for arg in consumer.value.args[1:]
        )
        if first_arg_only and (callee.attrs or {}).get("Primitive", False):
            return binding, consumer
    return None


def _uses(value, var) -> bool:
    """Whether a main-level call (args: vars, constants, tuples of them) reads `var`."""
    if not isinstance(value, relax.Call):
        return value.same_as(var)
    for arg in value.args:
        fields = arg.fields if isinstance(arg, relax.Tuple) else [arg]
        if any(field.same_as(var) for field in fields):
            return True
    return False


def _merged(layout_call: relax.Call, callee: relax.Function) -> relax.Function:
    """`callee` with its first parameter computed inside it by `layout_call` from a new one."""
    graph_input = layout_call.args[1].fields[0]
    new_input = relax.Var("data", graph_input.ty)
    moved = relax.VarBinding(
        callee.params[0],
        relax.call_tir(layout_call.args[0], relax.Tuple([new_input]), layout_call.ty_args[0]),
    )
    (block,) = callee.body.blocks
    body = relax.SeqExpr([relax.DataflowBlock([moved, *block.bindings])], callee.body.body)
    params = [new_input, *callee.params[1:]]
    return relax.Function(params, body, callee.ret_ty, callee.is_pure, callee.attrs)
