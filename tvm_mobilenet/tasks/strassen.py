"""Wide float32 1x1 layers run as one-level Strassen kernels: the rewrite compile applies.

The kernel (schedules/strassen.py) replaces a fused pointwise function whose computation is exactly
a packed 1x1 convolution + bias + ReLU, ReLU6 or nothing: the pass builds that function for the
layer's shapes the way the model's own functions were built (`tasks.extract.fuse` of a three-op
graph) and takes only functions structurally equal to one of them. Its calls get the seven
products' weight operands, computed from their packed weights here.

Tuning leaves these layers out (`strassen_tasks`): a record of one would be used only by a
build without Strassen (`compile --no-strassen`; `tune --no-strassen` tunes them)."""

from __future__ import annotations

import numpy as np
import tvm
import tvm_ffi
from tvm import relax

from tvm_mobilenet.schedules import strassen
from tvm_mobilenet.schedules.cpu import CpuParams
from tvm_mobilenet.schedules.templates import family_module
from tvm_mobilenet.tasks.blocks import STRASSEN_SUFFIX
from tvm_mobilenet.tasks.extract import Task, fuse
from tvm_mobilenet.tasks.weight_packing import is_packed_pointwise, rewrite_weights, unpack

_ACTIVATIONS = {
    "none": lambda y: y,
    "relu": relax.op.nn.relu,
    "relu6": lambda y: relax.op.clip(y, 0, 6),
}


def _strassen_params(schedule_family: str | None, target: tvm.target.Target) -> CpuParams | None:
    """The family's CPU register shapes for `target` if its builds use Strassen; None otherwise
    (GPU families, stock builds, CPU families without it)."""
    if schedule_family is None:
        return None
    params = family_module(schedule_family).params_for(target)
    return params if isinstance(params, CpuParams) and params.strassen else None


def strassen_tasks(
    tasks: list[Task], target: tvm.target.Target, schedule_family: str | None
) -> list[Task]:
    """The tasks whose functions a build with Strassen replaces (so tuning them is no use)."""
    params = _strassen_params(schedule_family, target)
    if params is None:
        return []
    return [task for task in tasks if _plan(_as_fused(task), target, params) is not None]


def _as_fused(task: Task) -> tvm.tirx.PrimFunc:
    """The task's function as `fuse` left it (task extraction gives it a global symbol)."""
    return next(iter(task.mod.functions.values())).without_attr("global_symbol")


def use_strassen(
    mod: tvm.IRModule, target: tvm.target.Target, schedule_family: str | None
) -> tvm.IRModule:
    """Every fused function of `mod` that `strassen.plan` takes for the family, as its kernel."""
    params = _strassen_params(schedule_family, target)
    if params is None:
        return mod
    plans = {}
    for gv, func in mod.functions.items():
        conv = _plan(func, target, params)
        if conv is not None:
            plans[gv.name_hint] = conv
    for name, conv in plans.items():
        func = mod[name]
        mod = rewrite_weights(
            mod,
            lambda candidate, func=func: candidate.same_as(func),
            lambda weight: True,
            lambda _, conv=conv: conv.kernel(),
            lambda packed, conv=conv: strassen.pack_operands(
                unpack(packed)[0, 0], conv.tile_channels
            ),
            suffix=STRASSEN_SUFFIX,
        )
    return mod


def _plan(func, target: tvm.target.Target, params: CpuParams) -> strassen.StrassenConv | None:
    if not is_packed_pointwise(func):
        return None
    _, height, width, in_channels = (int(d) for d in func.params[0].ty.shape)
    out_channels = int(func.params[-1].ty.shape[-1])
    shape = (height, width, in_channels, out_channels)
    for activation in strassen.ACTIVATIONS:
        if tvm_ffi.structural_equal(func, _reference_function(shape, activation, target)):
            return strassen.plan(*shape, activation, params)
    return None


_REFERENCES: dict = {}


def _reference_function(shape, activation: str, target) -> tvm.tirx.PrimFunc:
    """The fused function of conv2d (1x1, NHWC, HWIO) + bias + `activation` at `shape`, as
    `fuse` builds it for `target` (cached: a model repeats its shapes)."""
    key = (shape, activation, str(target))
    if key not in _REFERENCES:
        height, width, in_channels, out_channels = shape
        builder = relax.BlockBuilder()
        data = relax.Var("data", relax.TensorType((1, height, width, in_channels), "float32"))
        with builder.function("main", [data]):
            with builder.dataflow():
                weight = relax.const(np.zeros((1, 1, in_channels, out_channels), "float32"))
                bias = relax.const(np.zeros((1, 1, 1, out_channels), "float32"))
                y = builder.emit(
                    relax.op.nn.conv2d(data, weight, data_layout="NHWC", kernel_layout="HWIO")
                )
                y = builder.emit(relax.op.add(y, bias))
                out = builder.emit_output(_ACTIVATIONS[activation](y))
            builder.emit_func_output(out)
        fused = fuse(builder.get(), target)
        (_REFERENCES[key],) = (
            f for f in fused.functions.values() if isinstance(f, tvm.tirx.PrimFunc)
        )
    return _REFERENCES[key]
