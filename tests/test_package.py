"""The package as a user installs it: a wheel in a fresh virtual environment, used from a directory
outside the repository. Nothing lands in site-packages but tvm_mobilenet."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import ROOT


def run(command: list, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout (dependencies from the index or pip's
    cache); returns the venv's directory."""
    work = tmp_path_factory.mktemp("wheel")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            work,
            ROOT,
        ],
        cwd=work,
    )
    (wheel,) = work.glob("tvm_mobilenet-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", wheel], cwd=work)
    return env_dir


@pytest.mark.slow
def test_wheel_installs_only_tvm_mobilenet(installed):
    (site_packages,) = installed.glob("lib/python*/site-packages")
    ours = {p.name for p in site_packages.iterdir() if p.name.startswith("tvm_mobilenet")}
    assert {"tvm_mobilenet"} <= ours
    assert not (site_packages / "schedules").exists() and not (site_packages / "targets").exists()
    package = site_packages / "tvm_mobilenet"
    for data in (
        "schedules/cpu.py",
        "targets/x86.json",
        "run/cpp_app/Makefile",
        "scripts/lib.sh",
        "scripts/qemu_insn_count.c",  # `tvm-mobilenet setup emulation` builds the plugin from it
    ):
        assert (package / data).is_file(), data


@pytest.mark.slow
def test_model_compile_run_from_outside_the_repository(installed, tmp_path):
    python = installed / "bin" / "python"
    table = run(
        [python, "-m", "tvm_mobilenet.model", "--alpha", "0.25", "--resolution", "64"], tmp_path
    )
    assert "total" in table.stdout
    compiled = run(
        [
            installed / "bin" / "tvm-mobilenet",
            "compile",
            "--alpha",
            "0.25",
            "--resolution",
            "64",
            "-o",
            "x.so",
        ],
        tmp_path,
    )
    assert "verified against the float64 reference" in compiled.stdout
    ran = run([python, "-m", "tvm_mobilenet.run", "x.so", "--repeat", "2", "--json"], tmp_path)
    assert '"input_shape": [1, 3, 64, 64]' in ran.stdout
    commands = run([installed / "bin" / "tvm-mobilenet", "--help"], tmp_path).stdout
    assert all(name in commands for name in ("model", "tune", "compile", "run", "bench", "farm"))
