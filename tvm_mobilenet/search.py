"""Search styles and default schedules: which design space a task is tuned in, and what an
untuned function gets at compile time.

- "template": our hand-written templates (`schedules/`), searched over their knobs (what AutoTVM did);
- "auto": MetaSchedule's generated space from the target's default rules (what Ansor did);
- "both": one search over the union of the two spaces, keeping whichever measures best.
Tasks without a template (pooling, classifier, softmax, layout change) use the generated space.
"""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm.s_tir import dlight
from tvm.s_tir import meta_schedule as ms

import schedules
import schedules.cpu

from .errors import TvmMobilenetError
from .tasks import Task

SEARCH_STYLES = ("both", "template", "auto")
# The anchor block names Relax's legalization gives NHWC convolutions (see network.py).
TEMPLATE_BLOCKS = {"group_conv2d_nhwc": "depthwise", "conv2d_nhwc": "conv"}


def template_kind(mod: tvm.IRModule) -> str | None:
    """"depthwise" or "conv" if the module's function has a convolution a template handles."""
    sch = s_tir.Schedule(mod)
    names = {sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock("root"))}
    kinds = [kind for block_name, kind in TEMPLATE_BLOCKS.items() if block_name in names]
    return kinds[0] if kinds else None


def family_module(schedule_family: str):
    if schedule_family not in schedules.FAMILIES:
        raise TvmMobilenetError(
            f"no schedule templates for family '{schedule_family}': have {', '.join(schedules.FAMILIES)}"
        )
    return schedules.FAMILIES[schedule_family]


def apply_template(sch: s_tir.Schedule, kind: str, schedule_family: str, target: tvm.target.Target,
                   tuning: bool) -> None:
    family = family_module(schedule_family)
    family.TEMPLATES[kind](sch, family.params_for(target), tuning)


def _template_space(kind: str, schedule_family: str, target: tvm.target.Target) -> ms.space_generator.ScheduleFn:
    def sample(sch: s_tir.Schedule) -> None:
        apply_template(sch, kind, schedule_family, target, tuning=True)

    # The template sets loop kinds and decomposes the reduction itself: of the target's
    # postprocessors only the checks apply. Tile sizes and the unroll step are the knobs.
    checks = [ms.postproc.DisallowDynamicLoop()]
    if target.kind.name != "llvm":
        checks.append(ms.postproc.VerifyGPUCode())
    return ms.space_generator.ScheduleFn(
        sample, sch_rules=[], postprocs=checks,
        mutator_probs={ms.mutator.MutateTileSize(): 1.0},
    )


def space_generator(task: Task, search: str, schedule_family: str, target: tvm.target.Target):
    """The MetaSchedule space generator of `task` under `search`."""
    if search not in SEARCH_STYLES:
        raise TvmMobilenetError(f"unknown search style '{search}': choose one of {', '.join(SEARCH_STYLES)}")
    kind = template_kind(task.mod)
    if search == "auto" or kind is None:
        return "post-order-apply"
    template = _template_space(kind, schedule_family, target)
    if search == "template":
        return template
    return ms.space_generator.SpaceGeneratorUnion([template, ms.space_generator.PostOrderApply()])


def heuristic_schedule(mod: tvm.IRModule, schedule_family: str, target: tvm.target.Target) -> s_tir.Schedule | None:
    """The template's schedule of `mod` with heuristic knobs, or None if no template applies."""
    kind = template_kind(mod)
    if kind is None:
        return None
    sch = s_tir.Schedule(mod)
    apply_template(sch, kind, schedule_family, target, tuning=False)
    return sch


def default_schedule(task: Task, schedule_family: str, target: tvm.target.Target) -> s_tir.Schedule | None:
    """The heuristic schedule of `task`: tuning measures it first, so the search starts from it
    and never ends slower than the untuned build."""
    return heuristic_schedule(task.mod, schedule_family, target)


def _schedule_untuned(func: tvm.tirx.PrimFunc, schedule_family: str, target) -> tvm.tirx.PrimFunc | None:
    mod = tvm.IRModule({"main": func})
    sch = heuristic_schedule(mod, schedule_family, target)
    if sch is None:
        sch = s_tir.Schedule(mod)
        if target.kind.name != "llvm" or not _is_single_injective(sch):
            return None  # reductions and the classifier: DLight's rules below
        schedules.cpu.injective(sch)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _is_single_injective(sch: s_tir.Schedule) -> bool:
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    return len(blocks) == 1 and all(int(iv.iter_type) == 0 for iv in sch.get(blocks[0]).iter_vars)


def default_schedules(schedule_family: str, target: tvm.target.Target) -> tvm.transform.Pass:
    """A pass that schedules every function no tuning record covered: convolutions with the
    templates' heuristic knobs, the rest with DLight's CPU or GPU rules."""

    @tvm.transform.module_pass(opt_level=0, name="TvmMobilenetDefaultSchedules")
    def apply(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        updates = {}
        for gvar, func in mod.functions.items():
            if isinstance(func, tvm.tirx.PrimFunc) and not func.attrs.get("tirx.is_scheduled", False):
                scheduled = _schedule_untuned(func, schedule_family, target)
                if scheduled is not None:
                    updates[gvar] = scheduled
        for gvar, func in updates.items():
            mod[gvar] = func
        with target:
            if target.kind.name == "llvm":
                mod = dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction())(mod)
            else:
                mod = dlight.ApplyDefaultSchedule(
                    dlight.gpu.GEMV(), dlight.gpu.Reduction(), dlight.gpu.GeneralReduction(),
                    dlight.gpu.Fallback())(mod)
        return mod

    return apply
