"""Make MetaSchedule's first use cheap: register TVM's CPU tensor intrinsics only, without slow
stack walks.

MetaSchedule's TuneContext imports `tvm.s_tir.tensor_intrin`, whose `__init__` parses about 250
TVMScript functions, nearly all of them CUDA intrinsics no CPU or Mali schedule names (3.1 of its
4.4 s on a 2-core AMD EPYC, 2026-11-26, in the tuning process and in every build worker). We put
the package in `sys.modules` without running its `__init__` and import only its x86 and ARM
modules (what MetaSchedule's generated spaces for VNNI and dot-product CPUs name; our own
templates register theirs in schedules/intrin.py).

Each TVMScript function calls `inspect.stack()`, and for frames of frozen import machinery
("<frozen importlib._bootstrap>") `inspect` searches every loaded module for a source file: ~30 s
of CPU per process on this machine. The parser only needs the frames' objects and the source
lines of real files, so during that import frozen frames are listed without a source lookup."""

from __future__ import annotations

import importlib
import importlib.util
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


INTRINSICS_PACKAGE = "tvm.s_tir.tensor_intrin"
CPU_INTRINSIC_MODULES = ("x86", "arm_cpu")


def import_tensor_intrinsics() -> None:
    """Register TVM's x86 and ARM tensor intrinsics once, quickly (idempotent)."""
    if INTRINSICS_PACKAGE in sys.modules:
        return
    package = importlib.util.module_from_spec(importlib.util.find_spec(INTRINSICS_PACKAGE))
    sys.modules[INTRINSICS_PACKAGE] = package  # its __init__ (the CUDA intrinsics) never runs
    original = inspect.stack
    inspect.stack = _stack_without_frozen_sources
    try:
        for name in CPU_INTRINSIC_MODULES:
            importlib.import_module(f"{INTRINSICS_PACKAGE}.{name}")
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
