"""The emulated aarch64 machine: qemu user-mode + an arm64 Debian root filesystem + aarch64 TVM
wheels; for counting instructions also the dynamic qemu-aarch64, its counting plugin and the peers'
aarch64 wheels.

`tvm-mobilenet setup emulation` (scripts/setup_emulation.sh) builds it into
`$TVM_MOBILENET_CACHE/emulation` (default
~/.cache/tvm_mobilenet/emulation). Emulated timings are meaningless; the device is for correctness,
and for instruction counts (farm/insn_count.py).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.errors import FarmUnavailableError

SETUP_COMMAND = "tvm-mobilenet setup emulation"
QEMU = "qemu-aarch64-static"
QEMU_DYNAMIC = "qemu-aarch64"  # Debian's qemu-user: the one that loads TCG plugins
PYTHON = "usr/bin/python3.11"  # Debian bookworm's python, the version the aarch64 wheels are for
CROSS_SYSROOT = "/usr/aarch64-linux-gnu"  # Debian's g++-aarch64-linux-gnu libraries


DEFAULT_QEMU_CPU = "cortex-a72"


def qemu_cpu_for(key: str) -> str:
    """The qemu CPU of the ARM device whose name is `key` in targets/arm.json (rasp4b:
    cortex-a72; rk3399: cortex-a53), else cortex-a72."""
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.errors import TargetSpecError

    try:
        return load_device("arm", key).qemu_cpu or DEFAULT_QEMU_CPU
    except TargetSpecError:
        return DEFAULT_QEMU_CPU


def cache_dir() -> Path:
    return Path(os.environ.get("TVM_MOBILENET_CACHE", Path.home() / ".cache" / "tvm_mobilenet"))


@dataclass(frozen=True)
class Emulation:
    """Where the emulated machine's parts are."""

    root: Path

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def python(self) -> Path:
        return self.rootfs / PYTHON

    @property
    def runtime_extra_lib(self) -> Path:
        # random fill for MetaSchedule's measurements; a runtime-only process does not load it by
        # itself
        return self.wheels / "tvm" / "lib" / "libtvm_runtime_extra.so"

    @property
    def count_plugin(self) -> Path:
        """qemu's instruction-counting plugin, built from scripts/qemu_insn_count.c."""
        return self.root / "plugins" / "libinsn_count.so"

    @property
    def cpuinfo(self) -> Path:
        """The rootfs's ARM /proc/cpuinfo (Cortex-A72 cores), which qemu-user shows the guest
        instead of the host's: libraries that pick kernels by CPU (XNNPACK, ONNX Runtime) pick
        them for that core."""
        return self.rootfs / "proc" / "cpuinfo"

    def peer_wheels(self, peer: str) -> Path:
        """The aarch64 wheels of a peer (`litert`, `onnxruntime`), for the emulated python."""
        return self.root / "peer_wheels" / peer

    def missing(self) -> str | None:
        """What is not set up yet, or None."""
        if shutil.which(QEMU) is None:
            return f"{QEMU} is not installed"
        for stamp in (self.rootfs / ".complete", self.wheels / ".complete"):
            if not stamp.is_file():
                return f"{stamp.parent} is not built"
        return None

    def counting_missing(self) -> str | None:
        """What instruction counting needs and is not set up yet, or None."""
        if shutil.which(QEMU_DYNAMIC) is None:
            return f"{QEMU_DYNAMIC} (Debian's qemu-user) is not installed"
        if not self.count_plugin.is_file():
            return f"{self.count_plugin} is not built"
        if not self.cpuinfo.is_file():  # ONNX Runtime crashes without it
            return f"the rootfs has no ARM {self.cpuinfo.relative_to(self.rootfs)}"
        return self.missing()

    def python_command(self) -> list[str]:
        """The emulated python3 (arguments follow)."""
        return [QEMU, "-L", str(self.rootfs), str(self.python)]

    def python_env(self, cpu: str, tmpdir: Path) -> dict[str, str]:
        """The environment of an emulated runtime-only TVM process."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmpdir),
            "TMPDIR": str(tmpdir),
            "PYTHONPATH": str(self.wheels),
            "TVM_USE_RUNTIME_LIB": "1",
            # qemu's default cpu ("max") has SVE2 and would hide instructions a real Cortex core
            # lacks
            "QEMU_CPU": cpu,
        }


def emulation() -> Emulation:
    return Emulation(cache_dir() / "emulation")


def require_emulation(counting: bool = False) -> Emulation:
    """The emulated machine (with what counting instructions needs, if `counting`), or
    FarmUnavailableError saying how to set it up."""
    emu = emulation()
    problem = emu.counting_missing() if counting else emu.missing()
    if problem:
        what = "aarch64 instruction counting" if counting else "aarch64 emulation"
        raise FarmUnavailableError(f"{what} is not set up ({problem}): run `{SETUP_COMMAND}`")
    return emu


def native_command(binary: str | Path) -> list[str]:
    """Run a cross-compiled aarch64 Linux executable (e.g. the C++ app) under qemu."""
    if shutil.which(QEMU) is None:
        raise FarmUnavailableError(f"{QEMU} is not installed: run `{SETUP_COMMAND}`")
    return [QEMU, "-L", CROSS_SYSROOT, str(binary)]
