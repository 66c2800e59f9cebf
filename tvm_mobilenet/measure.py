"""How candidates are built and measured: MetaSchedule builders and runners per target.

Local targets build and measure on this machine. RPC targets build a cross-compiled .so here and
measure it on every device registered under a tracker key, one candidate per device at a time.
The callables handed to MetaSchedule run in its worker processes, which may import another copy
of this package (or none): they are closures that use only TVM, so cloudpickle ships them by value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tvm.s_tir import meta_schedule as ms

from .rpc_farm import Tracker, require_devices

# A busy 2-core machine needs more than MetaSchedule's 30 s default to build a candidate.
BUILD_TIMEOUT_SEC = 120
RUN_TIMEOUT_SEC = 60
# One remote candidate: waiting for a free device, upload, load, measure. A device that dies or hangs
# costs only the candidate it holds, after at most this long.
RPC_TIMEOUT_SEC = 120


@dataclass(frozen=True)
class RpcSettings:
    """Where remote candidates are measured."""

    tracker: Tracker
    key: str
    timeout_sec: float = RPC_TIMEOUT_SEC


def local_workers() -> int:
    return len(os.sched_getaffinity(0))


def evaluator_config() -> ms.runner.EvaluatorConfig:
    # Repeat 3 x (at least 50 ms) so the median-like mean is stable on a shared machine.
    return ms.runner.EvaluatorConfig(number=3, repeat=3, min_repeat_ms=50, enable_cpu_cache_flush=False)


def cross_export(compiler: str):
    """A LocalBuilder `f_export` that links each candidate into a .so with `compiler` (a cross g++)."""

    def export(mod) -> str:
        import tempfile  # pylint: disable=import-outside-toplevel

        from tvm.support import cc  # pylint: disable=import-outside-toplevel

        path = os.path.join(tempfile.mkdtemp(prefix="tvm_mobilenet_candidate_"), "candidate.so")
        mod.export_library(path, fcompile=cc.cross_compiler(compiler))
        return path

    return export


def make_builder(f_export=None) -> ms.builder.LocalBuilder:
    """Build candidates on this machine (`f_export` cross-exports them for a remote device)."""
    return ms.builder.LocalBuilder(max_workers=local_workers(), timeout_sec=BUILD_TIMEOUT_SEC, f_export=f_export)


def make_runner(rpc: RpcSettings | None = None):
    """Measure candidates on this machine, or on the devices behind `rpc`'s tracker key."""
    if rpc is None:
        return ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_SEC, evaluator_config=evaluator_config())
    return make_rpc_runner(rpc)


def make_rpc_runner(rpc: RpcSettings) -> ms.runner.RPCRunner:
    """An RPCRunner with one worker per device under the key, each candidate bounded by a timeout."""
    from tvm.support.popen_pool import PopenPoolExecutor  # pylint: disable=import-outside-toplevel

    devices = require_devices(rpc.tracker, rpc.key).total
    runner = ms.runner.RPCRunner(
        rpc_config=ms.runner.RPCConfig(tracker_host=rpc.tracker.host, tracker_port=rpc.tracker.port,
                                       tracker_key=rpc.key, session_timeout_sec=int(rpc.timeout_sec)),
        evaluator_config=evaluator_config(),
        max_workers=devices,
    )
    # RPCRunner's pool has no timeout: a hung device (or a queue nobody serves) would block its worker
    # forever. With one, the worker is killed and the candidate becomes "RPCRunner: Timeout".
    runner.pool.shutdown(wait=False)
    runner.pool = PopenPoolExecutor(max_workers=devices, timeout=rpc.timeout_sec)
    return runner
