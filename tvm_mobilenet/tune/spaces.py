"""Search styles: which MetaSchedule design space a task is tuned in.

- "template": our hand-written templates (`tvm_mobilenet.schedules`), searched over their knobs
  (what AutoTVM did);
- "auto": MetaSchedule's generated space from the target's default rules (what Ansor did);
- "both": one search over the union of the two spaces, keeping whichever measures best.
Tasks without a template (pooling, classifier, softmax, layout change) use the generated space."""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.schedules.untuned import untuned_schedule
from tvm_mobilenet.tasks.extract import Task

SEARCH_STYLES = ("both", "template", "auto")


def _template_space(
    kind: str, schedule_family: str, target: tvm.target.Target
) -> ms.space_generator.ScheduleFn:
    def sample(sch: s_tir.Schedule) -> None:
        apply_template(sch, kind, schedule_family, target, tuning=True)

    # The template sets loop kinds and decomposes the reduction itself: of the target's
    # postprocessors only the checks apply. Tile sizes and the unroll step are the knobs.
    checks = [ms.postproc.DisallowDynamicLoop()]
    if target.kind.name != "llvm":
        checks.append(ms.postproc.VerifyGPUCode())
    return ms.space_generator.ScheduleFn(
        sample,
        sch_rules=[],
        postprocs=checks,
        mutator_probs={ms.mutator.MutateTileSize(): 1.0},
    )


def space_generator(task: Task, search: str, schedule_family: str, target: tvm.target.Target):
    """The MetaSchedule space generator of `task` under `search`."""
    if search not in SEARCH_STYLES:
        raise TvmMobilenetError(
            f"unknown search style '{search}': choose one of {', '.join(SEARCH_STYLES)}"
        )
    kind = template_kind(task.mod)
    if search == "auto" or kind is None:
        return "post-order-apply"
    template = _template_space(kind, schedule_family, target)
    if search == "template":
        return template
    return ms.space_generator.SpaceGeneratorUnion([template, ms.space_generator.PostOrderApply()])


def search_on(device: DeviceSpec, search: str):
    """`(space_for, start_from)` of `search` on `device`, as tune_tasks takes them: a task's space
    generator, and for the styles with templates its untuned schedule (measured first: the
    template's heuristic one, or our untuned rule for a task without a template)."""
    target, family = device.target, device.schedule_family

    def space_for(task: Task):
        return space_generator(task, search, family, target)

    def untuned(task: Task) -> s_tir.Schedule | None:
        return untuned_schedule(task.mod, family, target)

    return space_for, None if search == "auto" else untuned
