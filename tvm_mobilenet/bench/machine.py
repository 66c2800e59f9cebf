"""Which machine a benchmark ran on, and when. These machines change CPU from day to day, so every
figure quoted must name its CPU and date; the bench's reports carry them instead of leaving that
to whoever copies a table."""

from __future__ import annotations

import datetime
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tvm_mobilenet.run.threads import available_cores

CPUINFO = Path("/proc/cpuinfo")


def _cpu_model() -> str:
    """/proc/cpuinfo's model name (what `lscpu` shows), else the platform's processor name."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _llvm_cpu() -> str:
    from tvm_mobilenet.devices import host_cpu

    return host_cpu()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Machine:
    cpu_model: str = field(default_factory=_cpu_model)
    llvm_cpu: str = field(default_factory=_llvm_cpu)  # the CPU class: what `-mcpu` resolves to
    cores: int = field(default_factory=available_cores)  # this process's
    started: str = field(default_factory=_now)

    def describe(self) -> str:
        return (
            f"machine: {self.cores} cores of {self.cpu_model} (LLVM `{self.llvm_cpu}`), "
            f"started {self.started}"
        )

    def as_dict(self) -> dict:
        return asdict(self)
