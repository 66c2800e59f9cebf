"""Check every system against the float64 reference, then time them round-robin.

Systems take turns within one process so that a change in the machine's load (it is shared) hits all
of them alike. Before each turn the process idles until no thread of it computes (`settle`):
thread pools keep spinning after a call and would steal a core from the next system. TVM's worker
spins ~235 ms after our module's call (2-core AMD EPYC, 2026-11-27: one core busy for 4-5 windows
of 50 ms), ONNX Runtime's ~25 ms; a fixed 0.1 s pause, used before, left the system after ours
sharing a core with TVM's worker: ONNX Runtime at 2 threads took 21.6 instead of 10.1 ms per call
right after ours. (Ours now runs as `run` and the C++ app do, with ~1 ms of spinning:
run/threads.py.) Each turn then makes one untimed call (caches, waking the pool) and a few timed
ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import median

import numpy as np

from tvm_mobilenet.bench.peer import Predict

CALLS_PER_TURN = 5
SETTLE_STEP_SECONDS = 0.02
SETTLE_MAX_SECONDS = 1.0
IDLE_SHARE = 0.1  # of one core: the process's own CPU time in a step below this means no spinning


@dataclass
class SystemResult:
    """One system at one thread count: timed, wrong (failed the check), failed (could not build) or
    skipped."""

    name: str
    label: str
    threads: int
    status: str
    version: str = ""
    note: str = ""
    max_abs_error: float | None = None
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float | None:
        return median(self.latencies_ms) if self.latencies_ms else None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "threads": self.threads,
            "status": self.status,
            "version": self.version,
            "note": self.note,
            "max_abs_error": self.max_abs_error,
            "median_ms": self.median_ms,
            "latencies_ms": self.latencies_ms,
        }


def aligned(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A copy of `array` whose data starts at a multiple of `alignment` bytes: the input every
    system gets, so that ours can take it in place as ONNX Runtime takes any numpy input (TVM
    refuses unaligned memory; TFLite copies either way)."""
    raw = np.empty(array.nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    result = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    result[...] = array
    return result


def max_abs_error(predict: Predict, data: np.ndarray, expected: np.ndarray) -> float:
    output = np.asarray(predict(data), dtype=np.float64)
    if output.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(output - expected)))


def time_round_robin(
    predictors: dict[str, Predict], data: np.ndarray, repeat: int
) -> dict[str, list[float]]:
    """`repeat` timed calls per system (ms), taken in turns of CALLS_PER_TURN; the order rotates per
    round."""
    names = list(predictors)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    round_index = 0
    while any(len(latencies[name]) < repeat for name in names):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            predict, calls = predictors[name], min(CALLS_PER_TURN, repeat - len(latencies[name]))
            settle()
            predict(data)
            for _ in range(calls):
                start = time.perf_counter()
                predict(data)
                latencies[name].append((time.perf_counter() - start) * 1e3)
        round_index += 1
    return latencies


def settle(step: float = SETTLE_STEP_SECONDS, limit: float = SETTLE_MAX_SECONDS) -> float:
    """Sleep until this process's threads stop computing (their CPU time in one `step` below
    IDLE_SHARE of it), at most `limit` seconds; the seconds waited."""
    began = time.perf_counter()
    while True:
        cpu = time.process_time()
        time.sleep(step)
        waited = time.perf_counter() - began
        if time.process_time() - cpu < IDLE_SHARE * step or waited >= limit:
            return waited
