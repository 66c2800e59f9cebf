"""Schedules for the functions no tuning record covers: convolutions get their template with
heuristic knobs, single injective blocks a parallel loop, the classifier the family's dense tile
if it has one, softmax its own loops; the rest DLight's CPU or GPU rules."""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm.s_tir import dlight

from tvm_mobilenet.schedules import cpu
from tvm_mobilenet.schedules.templates import family_module, heuristic_schedule
from tvm_mobilenet.tasks.blocks import DENSE_BLOCK

COMM_REDUCE = 2  # IterVar.iter_type of a reduction axis


def _schedule_untuned(
    func: tvm.tirx.PrimFunc, schedule_family: str, target
) -> tvm.tirx.PrimFunc | None:
    mod = tvm.IRModule({"main": func})
    sch = heuristic_schedule(mod, schedule_family, target)
    if sch is None:
        sch = s_tir.Schedule(mod)
        if target.kind.name != "llvm":
            return None  # DLight's GPU rules below
        if _reduction_blocks(sch) > 1:
            # Softmax: DLight's CPU reduction rule nests every block under the output loop, so
            # each of the 1000 outputs recomputes the row's max, exps and sum (1 M expf calls:
            # 42 M of an untuned ARM inference's 418 M aarch64 instructions, 8.8 ms on a
            # znver3 core). The loops as legalized are O(n).
            return func.with_attr("tirx.is_scheduled", True)
        if _dense(sch, schedule_family, target):
            return sch.mod["main"].with_attr("tirx.is_scheduled", True)
        if not _is_single_injective(sch):
            return None  # pooling and the classifier without a dense tile: DLight's rules below
        cpu.injective(sch)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _root_blocks(sch: s_tir.Schedule) -> list:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def _reduction_blocks(sch: s_tir.Schedule) -> int:
    return sum(
        any(int(iv.iter_type) == COMM_REDUCE for iv in sch.get(block).iter_vars)
        for block in _root_blocks(sch)
    )


def _dense(sch: s_tir.Schedule, schedule_family: str, target) -> bool:
    """Schedule a classifier with the family's dense tile, if it has one and the lanes fit."""
    params = family_module(schedule_family).params_for(target)
    names = [sch.get(block).name_hint for block in _root_blocks(sch)]
    if not getattr(params, "dense_vectors", 0) or DENSE_BLOCK not in names:
        return False
    _, j, _ = sch.get_loops(sch.get_sblock(DENSE_BLOCK))
    if int(sch.get(j).extent) % params.lanes:
        return False
    cpu.dense(sch, params, tuning=False)
    return True


def _is_single_injective(sch: s_tir.Schedule) -> bool:
    blocks = _root_blocks(sch)
    return len(blocks) == 1 and all(int(iv.iter_type) == 0 for iv in sch.get(blocks[0]).iter_vars)


def default_schedules(schedule_family: str, target: tvm.target.Target) -> tvm.transform.Pass:
    """A pass that schedules every function no tuning record covered."""

    @tvm.transform.module_pass(opt_level=0, name="TvmMobilenetDefaultSchedules")
    def apply(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        updates = {}
        for gvar, func in mod.functions.items():
            if isinstance(func, tvm.tirx.PrimFunc) and not func.attrs.get(
                "tirx.is_scheduled", False
            ):
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
                    dlight.gpu.GEMV(),
                    dlight.gpu.Reduction(),
                    dlight.gpu.GeneralReduction(),
                    dlight.gpu.Fallback(),
                )(mod)
        return mod

    return apply
