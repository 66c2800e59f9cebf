"""Schedules for the functions no tuning record covers: convolutions get their template with
heuristic knobs, single injective blocks a parallel loop, the int8 average pool its vector loop,
the rest DLight's CPU or GPU rules."""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm.s_tir import dlight

from tvm_mobilenet.schedules import cpu, cpu_int8
from tvm_mobilenet.schedules.templates import heuristic_schedule, int8_params

SOFTMAX_BLOCK = "T_softmax_maxelem"
INT8_POOL_BLOCK = "pool_sum"  # tvm_mobilenet/model/quantized.py's average_pool_te


def _block_names(sch: s_tir.Schedule) -> list[str]:
    return [sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock("root"))]


def _softmax_into_more(names: list[str]) -> bool:
    """softmax followed by other blocks (quantize, reshape: int8 models). DLight's cpu.Reduction
    takes the class axis of such a function for a spatial one and recomputes the max and the sum
    per class: O(n^2), 14 ms for 1000 classes (measured); its plain loops are O(n), ~10 us."""
    return SOFTMAX_BLOCK in names and not names[-1].startswith("T_softmax")


def _schedule_untuned(
    func: tvm.tirx.PrimFunc, schedule_family: str, target
) -> tvm.tirx.PrimFunc | None:
    mod = tvm.IRModule({"main": func})
    sch = heuristic_schedule(mod, schedule_family, target)
    if sch is None:
        sch = s_tir.Schedule(mod)
        names = _block_names(sch)
        if target.kind.name != "llvm":
            return None  # DLight's GPU rules below
        if INT8_POOL_BLOCK in names:
            cpu_int8.average_pool(sch, int8_params(schedule_family, target).acc_lanes)
        elif _softmax_into_more(names):
            pass  # left as it is, marked scheduled
        elif _is_single_injective(sch):
            cpu.injective(sch)
        else:
            return None  # reductions and the classifier: DLight's rules below
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _is_single_injective(sch: s_tir.Schedule) -> bool:
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
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
