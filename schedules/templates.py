"""Which template a fused function gets, and its schedule with heuristic knobs.

A template applies to a function whose anchor block is one of TEMPLATE_BLOCKS, the names Relax's
legalization gives NHWC convolutions (see tvm_mobilenet/model/relax_builder.py). A convolution that
reads int8 / uint8 data (an integerized model, tvm_mobilenet/model/quantized.py) gets the family's
int8 template ("int8_depthwise", "int8_conv") with its int8 parameters."""

from __future__ import annotations

import dataclasses

import tvm
from tvm import s_tir

from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.model.quantized import Int8Options
from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK

from . import FAMILIES, cpu_int8, intrin

TEMPLATE_BLOCKS = {DEPTHWISE_BLOCK: "depthwise", CONV_BLOCK: "conv"}
INT8_DTYPES = ("int8", "uint8")
INT8_PREFIX = "int8_"


def _reads_int8(sch: s_tir.Schedule, block) -> bool:
    """Whether the convolution block multiplies 8-bit integers (its first read is the data)."""
    data = sch.get(block).reads[0].source
    return str(data.dtype) in INT8_DTYPES


def template_kind(mod: tvm.IRModule) -> str | None:
    """ "depthwise" or "conv" (prefixed "int8_" for 8-bit data) if the module's function has a
    convolution a template handles."""
    sch = s_tir.Schedule(mod)
    blocks = {sch.get(b).name_hint: b for b in sch.get_child_blocks(sch.get_sblock("root"))}
    for block_name, kind in TEMPLATE_BLOCKS.items():
        if block_name in blocks:
            return INT8_PREFIX + kind if _reads_int8(sch, blocks[block_name]) else kind
    return None


def family_module(schedule_family: str):
    if schedule_family not in FAMILIES:
        raise TvmMobilenetError(
            f"no schedule templates for family '{schedule_family}': have {', '.join(FAMILIES)}"
        )
    return FAMILIES[schedule_family]


def family_for_target(target: tvm.target.Target) -> str:
    """The schedule family of a target (targets/*.json name the same one for their devices)."""
    if target.kind.name != "llvm":
        return "mali"
    return "arm_cpu" if "arm_cpu" in target.keys else "x86"


def int8_params(schedule_family: str, target: tvm.target.Target):
    """The family's int8 template parameters for `target` (its `.activation` is the activation
    storage the templates want, see model/quantized.py)."""
    return family_module(schedule_family).int8_params_for(target)


def int8_options(
    schedule_family: str, target: tvm.target.Target, arithmetic: str | None = None
) -> Int8Options:
    """How an int8 model is made integer for this family: `arithmetic` (default: the family's
    DEFAULT_INT8_ARITHMETIC), the activation storage its int8 templates multiply and how they
    multiply (exactly unless the target asks for saturation and has it, see with_int8_multiply)."""
    family = family_module(schedule_family)
    params = int8_params(schedule_family, target)
    return Int8Options(
        arithmetic or family.DEFAULT_INT8_ARITHMETIC,
        params.activation,
        "exact" if params.exact else "saturating",
    )


def with_int8_multiply(device, multiply: str):
    """`device` (a DeviceSpec) whose target multiplies int8 as `multiply` says: "exact", or
    "saturating" (a target key: x86 AVX2 kernels with ONNX Runtime's int16 pair saturation; a CPU
    with VNNI stays exact, its vpdpbusd is as fast)."""
    if multiply == "exact":
        return device
    if device.schedule_family != "x86":
        raise TvmMobilenetError(
            f"--int8-multiply {multiply} is for x86 (AVX2 without VNNI); the int8 kernels of "
            f"{device.family} are exact: drop the flag"
        )
    keys = [cpu_int8.SATURATING_KEY, *device.target.keys]
    return dataclasses.replace(device, target_config={**device.target_config, "keys": keys})


def apply_template(
    sch: s_tir.Schedule, kind: str, schedule_family: str, target: tvm.target.Target, tuning: bool
) -> None:
    family = family_module(schedule_family)
    if kind.startswith(INT8_PREFIX):
        intrin.register()
        params = family.int8_params_for(target)
    else:
        params = family.params_for(target)
    family.TEMPLATES[kind](sch, params, tuning)


def heuristic_schedule(
    mod: tvm.IRModule, schedule_family: str, target: tvm.target.Target
) -> s_tir.Schedule | None:
    """The template's schedule of `mod` with heuristic knobs, or None if no template applies.

    Tuning measures it first (so the search starts from it and never ends slower than the untuned
    build) and compilation uses it for functions without a tuning record."""
    kind = template_kind(mod)
    if kind is None:
        return None
    sch = s_tir.Schedule(mod)
    apply_template(sch, kind, schedule_family, target, tuning=False)
    return sch
