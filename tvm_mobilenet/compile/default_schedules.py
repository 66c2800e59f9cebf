"""Schedules for the functions no tuning record covers: convolutions get their template with
heuristic knobs; on CPUs the int8 average pool its vector loop, and the classifier, softmax, pooling
and layout changes our untuned rules (schedules/cpu_untuned.py); the rest DLight's CPU or GPU
rules."""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm.s_tir import dlight

from tvm_mobilenet.schedules import cpu_int8, cpu_untuned
from tvm_mobilenet.schedules.templates import family_module, heuristic_schedule, int8_params

INT8_POOL_BLOCK = "pool_sum"  # tvm_mobilenet/model/quantized.py's average_pool_te


def _schedule_untuned(
    func: tvm.tirx.PrimFunc, schedule_family: str, target
) -> tvm.tirx.PrimFunc | None:
    mod = tvm.IRModule({"main": func})
    sch = heuristic_schedule(mod, schedule_family, target)
    if sch is None:
        if target.kind.name != "llvm":
            return None  # DLight's GPU rules below
        sch = s_tir.Schedule(mod)
        if INT8_POOL_BLOCK in _block_names(sch):
            cpu_int8.average_pool(sch, int8_params(schedule_family, target).acc_lanes)
        elif not _cpu_rule(sch, family_module(schedule_family).params_for(target)):
            return None  # DLight's CPU rules below
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _cpu_rule(sch: s_tir.Schedule, params) -> bool:
    """Schedule a CPU function with the first of our untuned rules that applies."""
    if _is_single_injective(sch):
        cpu_untuned.injective(sch, params)
        return True
    if cpu_untuned.dense_applies(sch):
        cpu_untuned.dense(sch, params, tuning=False)
        return True
    return cpu_untuned.reductions(sch, params)


def _root_blocks(sch: s_tir.Schedule) -> list:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def _block_names(sch: s_tir.Schedule) -> list[str]:
    return [sch.get(block).name_hint for block in _root_blocks(sch)]


def _is_single_injective(sch: s_tir.Schedule) -> bool:
    blocks = _root_blocks(sch)
    return len(blocks) == 1 and all(
        int(iv.iter_type) == cpu_untuned.SPATIAL for iv in sch.get(blocks[0]).iter_vars
    )


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
