"""The schedule a function gets without a tuning record, on every target.

Convolutions get their template with heuristic knobs. On CPUs, the int8 average pool gets its
vector loop and the classifier, softmax, pooling and layout changes our untuned rules
(cpu_untuned.py). Everything else is left to DLight's rules at compile time (None here).

Tuning measures this schedule first, so a task's best record is never slower than its untuned
build, including the tasks no template covers."""

from __future__ import annotations

import tvm
from tvm import s_tir

from . import cpu_int8, cpu_untuned
from .fusion import SPATIAL
from .templates import family_module, heuristic_schedule, int8_params

INT8_POOL_BLOCK = "pool_sum"  # tvm_mobilenet/model/quantized.py's average_pool_te


def untuned_schedule(
    mod: tvm.IRModule, schedule_family: str, target: tvm.target.Target
) -> s_tir.Schedule | None:
    """The untuned schedule of `mod`'s function, or None where DLight's rules apply."""
    sch = heuristic_schedule(mod, schedule_family, target)
    if sch is not None or target.kind.name != "llvm":
        return sch  # GPU functions without a template: DLight's GPU rules
    sch = s_tir.Schedule(mod)
    if INT8_POOL_BLOCK in _block_names(sch):
        cpu_int8.average_pool(sch, int8_params(schedule_family, target).acc_lanes)
        return sch
    return sch if _cpu_rule(sch, family_module(schedule_family).params_for(target)) else None


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
        int(iv.iter_type) == SPATIAL for iv in sch.get(blocks[0]).iter_vars
    )
