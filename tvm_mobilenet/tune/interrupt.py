"""Ctrl-C while tuning: stop within seconds, keep every record, leave no worker behind.

The SIGINT handler never raises. A signal reaches Python between bytecodes of the main thread,
often inside a Python function that TVM's C++ called; raised there, a KeyboardInterrupt can abort
the process (seen: SIGSEGV through std::terminate when it came inside a search's parallel loop)
or leave a worker pool to be torn down in its own thread ("cannot join current thread"). Instead
the handler notes the request and kills the measuring workers (this process's children, which
ignore SIGINT themselves), so the batch in flight ends at once; the builder and runner then
return "interrupted" without starting new work, the cost model stops a search at its next
prediction, and the run stops at the next safe point by raising `Interrupted` (an ordinary
exception, which TVM carries back through its C++), which the tuner turns into KeyboardInterrupt.
Candidates cut short are not recorded as failures. A second Ctrl-C interrupts at once, the usual
way.
"""

from __future__ import annotations

import os
import signal
import threading

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

INTERRUPTED = "interrupted by Ctrl-C"


class Interrupted(Exception):
    """Raised at a safe point after a Ctrl-C; the tuner re-raises it as KeyboardInterrupt."""


class CtrlC:
    """Notes SIGINT while installed (only in the main thread; elsewhere it does nothing)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True
        self.uninstall()
        _kill_children()

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def stop_if_requested(self) -> None:
        if self.requested:
            raise Interrupted


def _kill_children() -> None:
    """Kill this process's descendants: the builder and runner workers (and their compilers)."""
    from tvm.support.popen_pool import kill_child_processes

    kill_child_processes(os.getpid())


@derived_object
class StoppableBuilder(ms.builder.PyBuilder):
    """`builder`, until a Ctrl-C: then every candidate is "interrupted" at once."""

    def __init__(self, builder, ctrl_c: CtrlC):
        self.builder = builder
        self.ctrl_c = ctrl_c

    def build(self, build_inputs):
        if self.ctrl_c.requested:
            return [ms.builder.BuilderResult(None, INTERRUPTED) for _ in build_inputs]
        return self.builder.build(build_inputs)

    def close(self) -> None:
        """Stop the builder's workers, if it keeps any."""
        if hasattr(self.builder, "close"):
            self.builder.close()


@derived_object
class _Interrupted(ms.runner.PyRunnerFuture):
    def done(self) -> bool:
        return True

    def result(self) -> ms.runner.RunnerResult:
        return ms.runner.RunnerResult(None, INTERRUPTED)


@derived_object
class StoppableRunner(ms.runner.PyRunner):
    """`runner`, until a Ctrl-C: then every candidate is "interrupted" at once."""

    def __init__(self, runner, ctrl_c: CtrlC):
        self.runner = runner
        self.ctrl_c = ctrl_c

    def run(self, runner_inputs):
        if self.ctrl_c.requested:
            return [_Interrupted() for _ in runner_inputs]
        return self.runner.run(runner_inputs)


@derived_object
class StoppableCostModel(ms.cost_model.PyCostModel):
    """`model`; after a Ctrl-C its next prediction stops the search (called from the search's
    main loop, outside its parallel sections, so the exception travels back cleanly)."""

    def __init__(self, model, ctrl_c: CtrlC):
        self.model = model
        self.ctrl_c = ctrl_c

    def load(self, path: str) -> None:
        self.model.load(path)

    def save(self, path: str) -> None:
        self.model.save(path)

    def update(self, context, candidates, results) -> None:
        self.model.update(context, candidates, results)

    def predict(self, context, candidates):
        self.ctrl_c.stop_if_requested()
        return self.model.predict(context, candidates)
