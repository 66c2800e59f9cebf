"""How candidates are built and measured: MetaSchedule builders and runners per target."""

from __future__ import annotations

import os

from tvm.s_tir import meta_schedule as ms

# A busy 2-core machine needs more than MetaSchedule's 30 s default to build a candidate.
BUILD_TIMEOUT_SEC = 120
RUN_TIMEOUT_SEC = 60


def local_workers() -> int:
    return len(os.sched_getaffinity(0))


def evaluator_config() -> ms.runner.EvaluatorConfig:
    # Repeat 3 x (at least 50 ms) so the median-like mean is stable on a shared machine.
    return ms.runner.EvaluatorConfig(number=3, repeat=3, min_repeat_ms=50, enable_cpu_cache_flush=False)


def make_builder(f_export=None) -> ms.builder.LocalBuilder:
    """Build candidates on this machine (`f_export` cross-exports them for a remote device)."""
    return ms.builder.LocalBuilder(max_workers=local_workers(), timeout_sec=BUILD_TIMEOUT_SEC, f_export=f_export)


def use_all_cores() -> None:
    """TVM's CPU runtime uses half the cores unless TVM_NUM_THREADS says otherwise (it assumes
    hyper-threading); measure and run with every core this process may use, as deployed."""
    os.environ.setdefault("TVM_NUM_THREADS", str(local_workers()))


def make_runner() -> ms.runner.LocalRunner:
    """Measure candidates on this machine, with all its cores."""
    return ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_SEC, evaluator_config=evaluator_config(),
                                 initializer=use_all_cores)
