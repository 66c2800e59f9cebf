"""Tunable knobs of a schedule template, shared by every target family.

A template calls these instead of MetaSchedule's samplers directly. When tuning, each knob is a
sampling instruction that MetaSchedule's search and mutators explore (AutoTVM-style knobs on
MetaSchedule). When compiling without a tuning record, each knob takes the template's heuristic
value instead, so the same code gives good untuned schedules.

Templates never branch in Python on a knob's value: MetaSchedule replays the trace with new
decisions, and a Python branch would not be replayed.
"""

from __future__ import annotations

from tvm import s_tir

UNROLL_STEPS = (0, 16, 64, 512)


def extent(sch: s_tir.Schedule, loop) -> int:
    return int(sch.get(loop).extent)


def heuristic_split(total: int, inner_wants: list[int]) -> list[int]:
    """Perfect factors of `total`, innermost first filled with the largest divisor <= its wish."""
    factors = []
    rest = total
    for want in reversed(inner_wants):
        factor = max(d for d in range(1, min(want, rest) + 1) if rest % d == 0)
        factors.append(factor)
        rest //= factor
    return [rest, *reversed(factors)]


class Knobs:
    """Sampled knobs when `tuning`, heuristic ones otherwise."""

    def __init__(self, sch: s_tir.Schedule, tuning: bool):
        self.sch = sch
        self.tuning = tuning

    def tile(self, loop, inner_wants: list[int], max_innermost: int):
        """Split `loop` into len(inner_wants) + 1 perfect tiles; returns (loops, factor RVs)."""
        decision = None if self.tuning else heuristic_split(extent(self.sch, loop), inner_wants)
        factors = self.sch.sample_perfect_tile(
            loop, n=len(inner_wants) + 1, max_innermost_factor=max_innermost, decision=decision
        )
        return self.sch.split(loop, factors, preserve_unit_iters=True), factors

    def padded(self, loop, candidates: list[int], default: int):
        """Split `loop` by a sampled factor among `candidates`, the last tile padded when the factor
        does not divide the extent (a predicate skips the work past the end); returns the loops."""
        factor = self.sch.sample_categorical(
            candidates=list(candidates),
            probs=[1 / len(candidates)] * len(candidates),
            decision=None if self.tuning else list(candidates).index(default),
        )
        return self.sch.split(loop, [None, factor], preserve_unit_iters=True)

    def unroll(self, loop, default: int = 64) -> None:
        """Let LLVM-independent unrolling expand loops under `loop` up to a sampled step count."""
        steps = self.sch.sample_categorical(
            candidates=list(UNROLL_STEPS),
            probs=[1 / len(UNROLL_STEPS)] * len(UNROLL_STEPS),
            decision=None if self.tuning else UNROLL_STEPS.index(default),
        )
        self.sch.annotate(loop, "pragma_auto_unroll_max_step", steps)
        self.sch.annotate(loop, "pragma_unroll_explicit", 1)
