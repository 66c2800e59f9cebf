"""Which template a fused function gets, and its schedule with heuristic knobs.

A template applies to a function whose anchor block is one of TEMPLATE_BLOCKS, the names Relax's
legalization gives NHWC convolutions (see tvm_mobilenet/model/relax_builder.py)."""

from __future__ import annotations

import tvm
from tvm import s_tir

from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK

from . import FAMILIES

TEMPLATE_BLOCKS = {DEPTHWISE_BLOCK: "depthwise", CONV_BLOCK: "conv"}


def template_kind(mod: tvm.IRModule) -> str | None:
    """ "depthwise" or "conv" if the module's function has a convolution a template handles."""
    sch = s_tir.Schedule(mod)
    names = {sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock("root"))}
    kinds = [kind for block_name, kind in TEMPLATE_BLOCKS.items() if block_name in names]
    return kinds[0] if kinds else None


def family_module(schedule_family: str):
    if schedule_family not in FAMILIES:
        raise TvmMobilenetError(
            f"no schedule templates for family '{schedule_family}': have {', '.join(FAMILIES)}"
        )
    return FAMILIES[schedule_family]


def apply_template(
    sch: s_tir.Schedule, kind: str, schedule_family: str, target: tvm.target.Target, tuning: bool
) -> None:
    family = family_module(schedule_family)
    family.TEMPLATES[kind](sch, family.params_for(target), tuning)


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
