"""Live tuning progress: a MetaSchedule measure callback that prints one line per measured batch."""

from __future__ import annotations

import time
from collections.abc import Callable

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

INVALID_RUN_SECS = 1e9  # at or above: a failed candidate
FAILED_RUN_SECS = 1e10  # what MetaSchedule (and we) commit as the time of a failed candidate


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def mean_seconds(run_secs) -> float | None:
    """Mean of a runner result's timings, or None for a failed candidate."""
    if not run_secs:
        return None
    seconds = sum(float(s) for s in run_secs) / len(run_secs)
    return seconds if seconds < INVALID_RUN_SECS else None


def last_line(error: str) -> str:
    """The last non-blank line of an error (MetaSchedule's errors end with the actual message)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


class Progress:
    """Counts trials over the whole run and prints task, trials, best latency, elapsed and ETA."""

    def __init__(
        self, total_trials: int, print_fn: Callable[[str], None] = print, task_count: int = 1
    ):
        self.total_trials = total_trials
        self.task_count = task_count
        self.done_trials = 0
        self.started = time.monotonic()
        self.print_fn = print_fn
        # per task (set by start_task)
        self.task_label = ""
        self.task_trials = 0
        self.task_done = 0
        self.best_seconds: float | None = None
        self.task_errors: list[str] = []  # one per failed candidate

    def start_task(
        self, label: str, trials: int, best_seconds: float | None, first_note: str | None = None
    ) -> None:
        self.task_label, self.task_trials, self.task_done = label, trials, 0
        self.best_seconds = best_seconds
        self.task_errors = []
        self.print_fn(
            f"{label}  measuring {trials} candidate(s)" + (f", {first_note}" if first_note else "")
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def record(self, results: list[tuple[float | None, str | None]]) -> None:
        """Account for a measured batch: (seconds or None, error message or None) per candidate."""
        for seconds, error in results:
            if seconds is None:
                self.task_errors.append(error or "no time was measured")
            elif self.best_seconds is None or seconds < self.best_seconds:
                self.best_seconds = seconds
        self.task_done += len(results)
        self.done_trials += len(results)
        elapsed = self.elapsed()
        eta = elapsed / self.done_trials * max(self.total_trials - self.done_trials, 0)
        best = "-" if self.best_seconds is None else f"{self.best_seconds * 1e6:.1f} us"
        failed = f"  ({len(self.task_errors)} failed)" if self.task_errors else ""
        self.print_fn(
            f"{self.task_label}  trials {self.task_done}/{self.task_trials}{failed}  "
            f"(all {self.done_trials}/{self.total_trials})  best {best}  "
            f"elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}"
        )


@derived_object
class ProgressCallback(ms.measure_callback.PyMeasureCallback):
    """Feeds each measured batch to a Progress (MetaSchedule calls it after the runner)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        batch = []
        for built, ran in zip(builder_results, runner_results, strict=True):
            error = built.error_msg or ran.error_msg
            batch.append((None if error else mean_seconds(ran.run_secs), error))
        self.progress.record(batch)
