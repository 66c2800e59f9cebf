"""Schedules for the functions no tuning record covers: ours (schedules/untuned.py) where one
applies, else DLight's CPU or GPU rules."""

from __future__ import annotations

import tvm
from tvm.s_tir import dlight

from tvm_mobilenet.schedules.untuned import untuned_schedule


def _schedule_untuned(
    func: tvm.tirx.PrimFunc, schedule_family: str, target
) -> tvm.tirx.PrimFunc | None:
    sch = untuned_schedule(tvm.IRModule({"main": func}), schedule_family, target)
    return None if sch is None else sch.mod["main"].with_attr("tirx.is_scheduled", True)


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
