"""Tuning tasks: the fused TIR functions of a model, labelled depthwise / pointwise / conv /
other."""

from __future__ import annotations

import math
from dataclasses import dataclass

import tvm
from tvm import relax, s_tir, sym
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.schedules.templates import family_for_target, int8_params
from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK
from tvm_mobilenet.tasks.standalone_pads import keep_pads_out_of_epilogues
from tvm_mobilenet.tasks.weight_packing import (
    block_for,
    hwio_shape,
    is_packed_dense,
    pack_dense_weights,
    pack_int8_pointwise_weights,
    pack_pointwise_weights,
)

KINDS = ("depthwise", "pointwise", "conv", "other")  # conv: a full (not 1x1) convolution


def fuse(mod: tvm.IRModule, target: tvm.target.Target, pack_weights: bool = True) -> tvm.IRModule:
    """Legalize and fuse, exactly as compilation does, so task keys match the compiled functions.

    On CPUs, pointwise and classifier weights are then pre-packed per output-channel block
    (weight_packing.py), and int8 ones for the target's dot-product intrinsic; `pack_weights=False`
    leaves them as stock TVM would (the untuned baseline)."""
    passes = [
        *relax.pipeline.library_dispatch_passes(target),
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        keep_pads_out_of_epilogues,
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]
    if pack_weights and target.kind.name == "llvm":
        passes.append(pack_pointwise_weights(block_for(target)))
        passes.append(pack_dense_weights())
        dot = int8_params(family_for_target(target), target).dot
        if dot is not None:
            passes.append(pack_int8_pointwise_weights(dot))
    with target, tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential(passes)(mod)


@dataclass
class Task:
    """One unique fused TIR function to tune."""

    name: str
    kind: str  # one of KINDS
    shape: str  # human-readable: input shape and kernel of the anchor operator
    flops: float  # per call
    weight: int  # how many times the model calls it
    extracted: ms.ExtractedTask

    @property
    def mod(self) -> tvm.IRModule:
        return self.extracted.dispatched[0]


def _param_shape(prim_func, index: int) -> list[int]:
    return [int(d) for d in prim_func.params[index].ty.shape]


def _conv_stride(prim_func) -> int:
    """The convolution's stride, read from the convolution block itself: the coefficient of the
    output row in the row index of its data read. (Not the ratio of the function's input and output
    heights: an epilogue may broadcast, as squeeze-and-excite multiplies its 1x1 gate into the whole
    feature map, and with "valid" padding or odd sizes the ratio is not the stride.)"""
    sch = s_tir.Schedule(tvm.IRModule({"main": prim_func}))
    blocks = {sch.get(b).name_hint: b for b in sch.get_child_blocks(sch.get_sblock("root"))}
    anchor = blocks.get(CONV_BLOCK) or blocks.get(DEPTHWISE_BLOCK)
    if anchor is not None:
        block = sch.get(anchor)
        row = block.iter_vars[1].var  # N, H, W, C, then the reduction axes
        for read in block.reads:  # the data's row index is stride * row + kernel row; weights: 0
            linear = sym.detect_linear_equation(read.region[1].min, [row])
            if linear and int(linear[0]) > 0:
                return int(linear[0])
    return _param_shape(prim_func, 0)[1] // _param_shape(prim_func, -1)[1]


def _conv_info(name: str, prim_func) -> tuple[str, str] | None:
    """(kind, shape) of a fused function whose anchor is an NHWC conv2d (see relax_builder.py)."""
    if "conv2d" not in name:
        return None
    data_shape, weight_shape = _param_shape(prim_func, 0), hwio_shape(_param_shape(prim_func, 1))
    kh, kw, in_per_group, out_c = weight_shape  # HWIO; depthwise: HWOI (C, 1) or HWIO (1, C)
    channels = data_shape[3]
    if channels > 1 and {in_per_group, out_c} == {1, channels}:
        kind, out_c = "depthwise", channels
    elif kh == kw == 1:
        kind = "pointwise"
    else:
        kind = "conv"
    stride = _conv_stride(prim_func)
    return kind, f"{'x'.join(map(str, data_shape))} k{kh}x{kw} s{stride} ->{out_c}"


def multiply_adds(task: Task) -> int:
    """Mult-adds of one call of a convolution or classifier task (0 for the others): output
    elements x the reduction each one takes."""
    prim_func = next(iter(task.mod.functions.values()))
    outputs = math.prod(_param_shape(prim_func, -1))
    if _conv_info(task.name, prim_func) is not None:
        kh, kw, in_per_group, _ = hwio_shape(_param_shape(prim_func, 1))
        return outputs * kh * kw * (1 if task.kind == "depthwise" else in_per_group)
    if "matmul" in task.name:
        return outputs * _param_shape(prim_func, 0)[-1]
    return 0


def classify(extracted: ms.ExtractedTask) -> tuple[str, str]:
    """(kind, shape description) of an extracted task."""
    prim_func = next(iter(extracted.dispatched[0].functions.values()))
    info = _conv_info(extracted.task_name, prim_func)
    if info is not None:
        return info
    return "other", "x".join(map(str, _param_shape(prim_func, -1)))


def tunable(extracted: ms.ExtractedTask) -> bool:
    """Whether tuning can judge the function's schedules. Not the packed classifier: it reads each
    weight once per call, cold, and the tuner times warm repeats. Its rule (schedules/cpu_untuned.
    dense) is built for the stream; the log's tuned classifier was faster warm and slower in the
    model (2-core AMD EPYC znver3, 1 thread: 94-97 vs 119-121 us warm, 455-602 vs 296-383 us in
    the model)."""
    return not is_packed_dense(next(iter(extracted.dispatched[0].functions.values())))


def extract_tasks(mod: tvm.IRModule, target: tvm.target.Target, ops: str = "all") -> list[Task]:
    """The model's tasks, selected by kind: "depthwise", "pointwise" or "all"."""
    if ops not in ("depthwise", "pointwise", "all"):
        raise TvmMobilenetError(f"unknown --ops '{ops}': use depthwise, pointwise or all")
    fused = fuse(mod, target)
    tasks = []
    for extracted in ms.relax_integration.extract_tasks(fused, target):
        if not tunable(extracted):
            continue
        kind, shape = classify(extracted)
        if ops not in ("all", kind):
            continue
        flops = float(tvm.s_tir.analysis.estimate_tir_flops(extracted.dispatched[0]))
        tasks.append(
            Task(extracted.task_name, kind, shape, flops, int(extracted.weight), extracted)
        )
    return tasks
