"""Check every system against the float64 reference, then time them round-robin.

Systems take turns within one process so that a change in the machine's load (it is shared) hits all
of them alike. Between turns the process idles for SETTLE_SECONDS: ONNX Runtime's and PyTorch's
workers keep spinning for tens of ms after a call (measured here: ORT burns ~25 ms of CPU), which
would otherwise steal a core from the next system. Each turn then makes one untimed call (caches,
waking the pool) and a few timed ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import median

import numpy as np

from tvm_mobilenet.bench.peer import Predict

CALLS_PER_TURN = 5
SETTLE_SECONDS = 0.1


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
            time.sleep(SETTLE_SECONDS)
            predict(data)
            for _ in range(calls):
                start = time.perf_counter()
                predict(data)
                latencies[name].append((time.perf_counter() - start) * 1e3)
        round_index += 1
    return latencies
