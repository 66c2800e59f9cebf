"""Shared fixtures: small models, the host device, and running the CLIs as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """Run the tests that use an OpenCL device (PoCL) first, before any test loads TensorFlow.
    Each carries its own LLVM and they clash in one process: with TensorFlow's loaded first, PoCL
    segfaults in clGetPlatformIDs (gdb: LookupBucketFor in libtensorflow_framework, from
    libclang-cpp.so.15's initializer), and with PoCL's initialized first, its kernel builds after
    TensorFlow loaded fail ("unknown target CPU 'skylake-avx512'"); seen 2026-11-27 on a 2-core AMD
    EPYC, where the whole run died at test_mali.py. Kernels built before TensorFlow loads work."""
    items.sort(key=lambda item: "opencl" not in getattr(item, "fixturenames", ()))


def run_cli(
    module: str, *args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m tvm_mobilenet.<module> args...` in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", f"tvm_mobilenet.{module}", *args],
        check=False,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd or ROOT,
    )


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, one line on stderr that contains `fragments`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("warning:")
    ]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TINY_MODEL = {"alpha": 0.25, "resolution": 32}
LOG_DEVICE = ("x86", "avx2")  # a named device: the same target on every x86 machine with AVX2
TINY_MODEL_FLAGS = (
    "--alpha",
    str(TINY_MODEL["alpha"]),
    "--resolution",
    str(TINY_MODEL["resolution"]),
)


def compile_tiny(output: Path, *flags: str) -> subprocess.CompletedProcess:
    """`compile` the TINY_MODEL MobileNet (0.25/32) with `flags` into `output` (a later --alpha or
    --resolution in `flags` wins)."""
    return run_cli("compile", *TINY_MODEL_FLAGS, *flags, "-o", str(output))


def tune_on(device, log, tasks, trials, search="template", heuristic_first=False, **kwargs):
    """tune_tasks of `tasks` on `device` in `search`'s design space, printing nothing unless
    `print_fn` is given; with `heuristic_first`, each task's heuristic schedule is measured first,
    as `tune` does. `kwargs` go to tune_tasks (builder, runner, ...)."""
    from tvm_mobilenet.tune.spaces import search_on
    from tvm_mobilenet.tune.tuner import tune_tasks

    space_for, heuristic = search_on(device, search)
    kwargs.setdefault("print_fn", lambda _: None)
    start_from = heuristic if heuristic_first else None
    return tune_tasks(tasks, trials, log, device.target, space_for, start_from=start_from, **kwargs)


@pytest.fixture(scope="session")
def tiny_log(tmp_path_factory) -> Path:
    """A real tuning log, made here: MobileNet 0.25/32 for x86 'avx2', the heuristic schedules of
    three depthwise tasks measured on this machine (copy it before changing it)."""
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.architecture import ModelConfig
    from tvm_mobilenet.model.source import BuiltinMobileNet
    from tvm_mobilenet.tune.api import TuneArgs, tune

    log_dir = tmp_path_factory.mktemp("tiny_log") / "log"
    args = TuneArgs(
        model=BuiltinMobileNet(ModelConfig(**TINY_MODEL)),
        device=load_device(*LOG_DEVICE),
        log_dir=log_dir,
        trials=3,
        ops="depthwise",
    )
    tune(args, print_fn=lambda _: None)
    return log_dir


@pytest.fixture(scope="module")
def opencl():
    """An OpenCL device here (PoCL), or the test is skipped, saying why and how to fix it."""
    from tvm_mobilenet.compile.opencl_check import OpenclDevice

    try:
        return OpenclDevice()
    except Exception as err:  # no pyopencl or no device: say which and how to fix
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def host_device():
    from tvm_mobilenet.devices import load_device

    return load_device("x86")
