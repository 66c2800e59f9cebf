"""How candidates are built and measured: MetaSchedule builders and runners per target.

Local targets build and measure on this machine. RPC targets build a cross-compiled .so here and
measure it on every device registered under a tracker key, one candidate per device at a time.
The callables handed to MetaSchedule run in its worker processes, which may import another copy
of this package (or none): they are closures that use only TVM, so cloudpickle ships them by value.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder.local_builder import _worker_func as build_one
from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

from tvm_mobilenet.errors import FarmUnavailableError
from tvm_mobilenet.farm.tracker import Tracker, request_session, require_devices
from tvm_mobilenet.run.threads import available_cores
from tvm_mobilenet.tune.startup import ignore_ctrl_c, init_builder_worker, init_runner_worker

# A busy 2-core machine needs more than MetaSchedule's 30 s default to build a candidate.
BUILD_TIMEOUT_SEC = 120
RUN_TIMEOUT_SEC = 60
# One remote candidate: waiting for a free device, upload, load, measure. A device that dies or
# hangs costs only the candidate it holds, after at most this long.
RPC_TIMEOUT_SEC = 120
# When every device under the key is gone, how long a run waits for one to come back before it
# stops.
DEVICE_RETURN_SEC = 60


@dataclass(frozen=True)
class RpcSettings:
    """Where remote candidates are measured."""

    tracker: Tracker
    key: str
    timeout_sec: float = RPC_TIMEOUT_SEC


def evaluator_config() -> ms.runner.EvaluatorConfig:
    # Repeat 3 x (at least 50 ms) so the median-like mean is stable on a shared machine.
    return ms.runner.EvaluatorConfig(
        number=3, repeat=3, min_repeat_ms=50, enable_cpu_cache_flush=False
    )


def cross_export(compiler: str):
    """A LocalBuilder `f_export` that links each candidate into a .so with `compiler` (a cross
    g++)."""

    def export(mod) -> str:
        import tempfile

        from tvm.support import cc

        path = os.path.join(tempfile.mkdtemp(prefix="tvm_mobilenet_candidate_"), "candidate.so")
        mod.export_library(path, fcompile=cc.cross_compiler(compiler))
        return path

    return export


def make_builder(f_export=None) -> PooledBuilder:
    """Build candidates on this machine (`f_export` cross-exports them for a remote device)."""
    return PooledBuilder(f_export)


@derived_object
class PooledBuilder(ms.builder.PyBuilder):
    """MetaSchedule's LocalBuilder with worker processes that outlive a batch.

    LocalBuilder starts fresh workers for every batch, and each imports TVM and its tensor
    intrinsics: ~5-9 s per batch on a 2-core EPYC (2026-11-26), most of a short run's time. Here
    the workers live until `close()` (the tuner calls it when a run ends), and each is replaced
    after RECYCLE_AFTER builds: LocalBuilder's reason for fresh workers is memory that builds
    leak. A worker that dies or times out is restarted at its next build. The initializer imports
    the intrinsics quickly and makes the worker ignore Ctrl-C (see tune/interrupt.py).
    """

    RECYCLE_AFTER = 64

    def __init__(self, f_export=None):
        self.f_export = f_export
        self._pool = None

    def start(self) -> None:
        """Start the workers now, in the background (idempotent): their imports (~4 s each) then
        overlap the runner's start and the task extraction instead of delaying the first batch."""
        if self._pool is None:
            self._pool = PopenPoolExecutor(
                max_workers=available_cores(),
                timeout=BUILD_TIMEOUT_SEC,
                initializer=init_builder_worker,
                maximum_process_uses=self.RECYCLE_AFTER,
            )
            for _ in range(available_cores()):
                self._pool.submit(int)

    def build(self, build_inputs):
        self.start()
        jobs = [(None, self.f_export, b.mod, b.target, None) for b in build_inputs]
        return [
            _builder_result(result)
            for result in self._pool.map_with_error_catching(lambda job: build_one(*job), jobs)
        ]

    def close(self) -> None:
        """Stop the workers (idempotent; the next build starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _builder_result(result) -> ms.builder.BuilderResult:
    """LocalBuilder's messages for a timed-out or failed build."""
    if result.status == StatusKind.COMPLETE:
        return ms.builder.BuilderResult(result.value, None)
    if result.status == StatusKind.TIMEOUT:
        return ms.builder.BuilderResult(
            None, f"LocalBuilder: Timeout, killed after {BUILD_TIMEOUT_SEC} seconds"
        )
    return ms.builder.BuilderResult(None, f"LocalBuilder: An exception occurred\n{result.value}")


def make_runner(rpc: RpcSettings | None = None):
    """Measure candidates on this machine, or on the devices behind `rpc`'s tracker key."""
    if rpc is None:  # all local cores, as deployed
        return ms.runner.LocalRunner(
            timeout_sec=RUN_TIMEOUT_SEC,
            evaluator_config=evaluator_config(),
            initializer=init_runner_worker,
        )
    return make_rpc_runner(rpc)


def make_rpc_runner(rpc: RpcSettings) -> ms.runner.RPCRunner:
    """An RPCRunner with one worker per device under the key, each candidate bounded by a
    timeout."""
    devices = require_devices(rpc.tracker, rpc.key).total
    runner = ms.runner.RPCRunner(
        rpc_config=ms.runner.RPCConfig(
            tracker_host=rpc.tracker.host,
            tracker_port=rpc.tracker.port,
            tracker_key=rpc.key,
            session_timeout_sec=int(rpc.timeout_sec),
        ),
        evaluator_config=evaluator_config(),
        max_workers=devices,
    )
    # RPCRunner's pool has no timeout: a hung device (or a queue nobody serves) would block its
    # worker forever. With one, the worker is killed and the candidate becomes "RPCRunner: Timeout".
    runner.pool.shutdown(wait=False)
    runner.pool = PopenPoolExecutor(
        max_workers=devices, timeout=rpc.timeout_sec, initializer=ignore_ctrl_c
    )
    return runner


@derived_object
class FarmWatch(ms.measure_callback.PyMeasureCallback):
    """Stops the run when a batch failed entirely and no device is left under the key.

    Runs after the batch is in the log, so nothing measured is lost; the same command resumes.
    MetaSchedule re-raises the error as a plain RuntimeError: the typed one is kept in `self.error`.
    """

    def __init__(self, rpc: RpcSettings, wait_sec: float = DEVICE_RETURN_SEC):
        self.rpc = rpc
        self.wait_sec = wait_sec
        self.error: FarmUnavailableError | None = None

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        if any(ran.error_msg is None for ran in runner_results):
            return
        deadline = time.monotonic() + self.wait_sec
        while True:
            try:
                require_devices(self.rpc.tracker, self.rpc.key)
                return
            except FarmUnavailableError as err:
                if time.monotonic() >= deadline:
                    self.error = FarmUnavailableError(
                        f"stopped: {err} (waited {self.wait_sec:.0f} s for a device to come back); "
                        "every record measured so far is kept: run the same command to resume"
                    )
                    raise self.error from None
            time.sleep(1.0)


OPENCL_RUNTIME_HINT = (
    "the PyPI TVM runtimes are built without OpenCL: build TVM's runtime for the board with "
    "USE_OPENCL=ON (see README, 'Mali: OpenCL kernels checked on PoCL') and register that"
)


def require_device_runtime(rpc: RpcSettings, device_kind: str) -> None:
    """Stop before tuning if the devices under `rpc.key` run a TVM runtime without `device_kind`
    (e.g. "opencl"): every candidate would fail to load, after minutes of building."""
    import tvm

    session = request_session(rpc.tracker, rpc.key, rpc.timeout_sec)
    try:
        present = session.device(device_kind, 0).exist
    except (OSError, RuntimeError, tvm.error.TVMError) as err:
        raise FarmUnavailableError(
            f"could not ask a '{rpc.key}' device at {rpc.tracker} for its runtime "
            f"({str(err).strip().splitlines()[-1]})"
        ) from None
    if not present:
        hint = (
            OPENCL_RUNTIME_HINT
            if device_kind == "opencl"
            else f"build TVM's runtime with {device_kind}"
        )
        raise FarmUnavailableError(
            f"the '{rpc.key}' devices at {rpc.tracker} have a TVM runtime without "
            f"{device_kind}: {hint}"
        )
