"""ARM CPU templates: the shared CPU templates with NEON register shapes (AArch64)."""

from __future__ import annotations

import tvm

from . import cpu

# AArch64 NEON: 32 q registers of 4 floats. Narrow vectors, so more of them per tile.
NEON = cpu.CpuParams(lanes=4, max_vectors=4, max_columns=4)


def params_for(target: tvm.target.Target) -> cpu.CpuParams:
    return NEON


TEMPLATES = {"depthwise": cpu.depthwise, "conv": cpu.conv}
