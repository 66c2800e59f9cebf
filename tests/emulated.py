"""Helpers for tests that need the emulated aarch64 machine (qemu + arm64 rootfs + aarch64 TVM
wheels)."""

from __future__ import annotations

import shutil
import socket

import pytest

from tvm_mobilenet.farm.emulation import SETUP_COMMAND, emulation


def require_emulation_setup() -> None:
    """Skip (with the command to run) if `tvm-mobilenet setup emulation` has not been run on this
    machine."""
    problem = emulation().missing()
    if problem is None and shutil.which("aarch64-linux-gnu-g++") is None:
        problem = "aarch64-linux-gnu-g++ is not installed"
    if problem:
        pytest.skip(f"aarch64 emulation is not set up ({problem}): run `{SETUP_COMMAND}`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
