"""Make MetaSchedule's first use cheap: import TVM's tensor intrinsics without slow stack walks.

MetaSchedule's TuneContext imports `tvm.s_tir.tensor_intrin`, which parses about a hundred
TVMScript functions, each calling `inspect.stack()`. For frames of frozen import machinery
("<frozen importlib._bootstrap>") `inspect` searches every loaded module for a source file: ~30 s
of CPU per process on this machine. The parser only needs the frames' objects and the source
lines of real files, so during that import frozen frames are listed without a source lookup."""

from __future__ import annotations

import inspect
import signal
import sys

from tvm_mobilenet.run.threads import use_all_cores


def _stack_without_frozen_sources(context: int = 1) -> list[inspect.FrameInfo]:
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<"):
            frames.append(
                inspect.FrameInfo(frame, filename, frame.f_lineno, frame.f_code.co_name, None, None)
            )
        else:
            frames.append(inspect.FrameInfo(frame, *inspect.getframeinfo(frame, context)))
        frame = frame.f_back
    return frames


def import_tensor_intrinsics() -> None:
    """Import tvm.s_tir.tensor_intrin once, quickly (idempotent)."""
    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    original = inspect.stack
    inspect.stack = _stack_without_frozen_sources
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack = original


def ignore_ctrl_c() -> None:
    """In a measuring worker: a terminal's Ctrl-C reaches the whole process group, but the tuning
    process stops its workers itself (quietly, and only once the records are safe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def init_builder_worker() -> None:
    ignore_ctrl_c()
    import_tensor_intrinsics()


def init_runner_worker() -> None:
    ignore_ctrl_c()
    use_all_cores()
