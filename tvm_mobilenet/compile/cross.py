"""The compiler that links a device's .so on this machine: the host g++, Debian's cross g++, or the
NDK."""

from __future__ import annotations

import os
import shutil

from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import CrossCompilerError

NDK = "ndk"  # in targets/*.json: the Android NDK's clang++, given by TVM_NDK_CC or --ndk-cc
INSTALL_HINTS = {
    "aarch64-linux-gnu-g++": "run `tvm-mobilenet setup emulation` or `apt-get install "
    "g++-aarch64-linux-gnu`",
}


def cross_compiler(device: DeviceSpec, ndk_cc: str | None = None) -> str | None:
    """The cross compiler of `device` (None: the host's own compiler); CrossCompilerError if
    missing."""
    compiler = device.cross_compiler
    if compiler is None:
        return None
    if compiler == NDK:
        compiler = ndk_cc or os.environ.get("TVM_NDK_CC")
        if not compiler:
            raise CrossCompilerError(
                f"{device.label} is an Android device: point --ndk-cc or TVM_NDK_CC at the NDK's "
                f"clang++ "
                "(e.g. "
                "$NDK/toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android28-clang++)"
            )
    if shutil.which(compiler) is None:
        hint = INSTALL_HINTS.get(compiler, "install it or fix the path")
        raise CrossCompilerError(
            f"the cross compiler '{compiler}' for {device.label} is not installed: {hint}"
        )
    return compiler


def export_function(compiler: str | None):
    """The `fcompile` of `export_library` for `compiler` (None: the default, the host's g++)."""
    if compiler is None:
        return None
    from tvm.support import cc

    return cc.cross_compiler(compiler)
