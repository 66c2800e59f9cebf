"""The CPU's fp32 FMA peak: cores x FMA units x vector lanes x 2 flops x clock, with where each came
from."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# (flag in /proc/cpuinfo, fp32 lanes, FMA units per core assumed, ISA name)
VECTOR_ISAS = (
    ("avx512f", 16, 2, "AVX-512"),  # server cores (Skylake-SP and later) have 2 AVX-512 FMA units
    ("avx2", 8, 2, "AVX2"),
    ("sse2", 4, 1, "SSE2, mul + add"),
)


@dataclass(frozen=True)
class FmaPeak:
    isa: str
    lanes: int
    fma_units: int
    clock_mhz: float
    clock_source: str

    def gflops(self, cores: int) -> float:
        return cores * self.fma_units * self.lanes * 2 * self.clock_mhz / 1e3

    def describe(self, cores: int) -> str:
        return (
            f"{cores} core(s) x {self.fma_units} FMA units ({self.isa}, assumed) x {self.lanes} "
            f"fp32 lanes "
            f"x 2 x {self.clock_mhz / 1e3:.2f} GHz ({self.clock_source}) = "
            f"{self.gflops(cores):.0f} GFLOP/s"
        )


def _max_mhz_from_lscpu() -> float | None:
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^CPU max MHz:\s*([\d.]+)", out, re.M)
    return float(match.group(1)) if match else None


def _clock(cpuinfo: str) -> tuple[float, str]:
    mhz = _max_mhz_from_lscpu()
    if mhz:
        return mhz, "lscpu 'CPU max MHz'"
    match = re.search(r"^model name\s*:.*@\s*([\d.]+)\s*GHz", cpuinfo, re.M)
    if match:
        return float(match.group(1)) * 1e3, "/proc/cpuinfo model name"
    match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if match:
        return float(
            match.group(1)
        ), "/proc/cpuinfo 'cpu MHz', the current clock: no max clock is exposed"
    return 1000.0, "unknown clock, 1 GHz assumed"


def detect_peak(cpuinfo_path: Path = CPUINFO) -> FmaPeak | None:
    """The host's FMA peak per core, or None where /proc/cpuinfo is missing (not Linux x86)."""
    try:
        cpuinfo = cpuinfo_path.read_text()
    except OSError:
        return None
    match = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    flags = set(match.group(1).split()) if match else set()
    for flag, lanes, units, isa in VECTOR_ISAS:
        if flag in flags:
            mhz, source = _clock(cpuinfo)
            return FmaPeak(isa, lanes, units, mhz, source)
    return None
