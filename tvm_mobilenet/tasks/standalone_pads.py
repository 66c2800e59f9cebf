"""Explicit pads (and concats) stay functions of their own instead of a convolution's epilogue.

The templates compute a task's epilogue at the convolution's register tile
(schedules/fusion.py), which covers only the output elements computed from the convolution's
output. A pad fused after a convolution would leave its border unwritten: seen with tf2onnx's
MobileNetV3Small, whose ZeroPadding2D (an NHWC Pad between two transposes) follows a convolution
and whose output was 0.995 off. TVM labels a pad at the end only "elementwise", so FuseOps fuses
it like a ReLU; this pass, run between AnnotateTIROpPattern and FuseOps, labels such functions
opaque. A convolution's own padding (its `pad_temp` block, pattern "out-elementwise-fusable") is
left alone.
"""

from __future__ import annotations

import tvm

OPAQUE = 8  # AnnotateTIROpPattern's kOpaque: FuseOps puts such a function in no group
INJECTIVE = 2  # elementwise (0) and broadcast (1) are below it


def writes_constants_too(func: tvm.tirx.PrimFunc) -> bool:
    """Whether some of the function's outputs are not computed from one input element: a pad's
    border (an `if_then_else` choosing a constant), or a concat's choice between inputs."""
    return "T.if_then_else(" in func.script()  # TVM 0.27's Python API has no TIR visitor


@tvm.transform.module_pass(opt_level=0, name="KeepPadsOutOfEpilogues")
def keep_pads_out_of_epilogues(mod: tvm.IRModule, _ctx=None) -> tvm.IRModule:
    """Label injective functions that pad or concatenate opaque, so nothing fuses with them."""
    for gvar, func in list(mod.functions.items()):
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        pattern = int((func.attrs or {}).get("op_pattern", OPAQUE))
        if pattern <= INJECTIVE and writes_constants_too(func):
            mod[gvar] = func.with_attr("op_pattern", OPAQUE)
    return mod
