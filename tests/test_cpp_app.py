"""The C++ example app: bundled with an aarch64 .so and run under qemu, and natively with an x86
.so; both print the reference's top-5 and write probabilities that match the float64 reference."""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest

from tvm_mobilenet.farm.emulation import native_command
from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model

from .conftest import compile_tiny, run_cli
from .emulated import require_emulation_setup

CONFIG = ModelConfig(0.25, 32)


def compile_so(tmp_path, target_flags, name):
    output = tmp_path / name
    result = compile_tiny(output, *target_flags, "--no-log")
    assert result.returncode == 0, result.stderr
    return output


def bundle(tmp_path, module):
    folder = tmp_path / f"dist_{module.stem}"
    result = run_cli(
        "bundle", str(module), "-o", str(folder), "--build-dir", str(tmp_path / "app_build")
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["mobilenet_app", module.name, "libtvm_runtime.so", "libtvm_ffi.so"]
    )
    return folder


def run_app(folder, command, files, **env) -> subprocess.CompletedProcess:
    """Run the bundled app in its folder with `files` as arguments and only PATH (+ `env`) set."""
    return subprocess.run(
        [*command, *map(str, files)],
        check=False,
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def check_app_output(proc, probs_file, expected, threads=None):
    """Top-5 and probabilities against the reference; the app runs on `threads` threads (default:
    every core this process may use, as `run` does; TVM alone would take half on x86) and says
    how much of its memory it advised onto huge pages (run/huge_pages.py)."""
    assert proc.returncode == 0, proc.stderr
    assert f"threads: {threads or len(os.sched_getaffinity(0))}" in proc.stderr.splitlines()
    assert re.search(r"^huge pages: \d+ MiB$", proc.stderr, re.MULTILINE), proc.stderr
    top5 = [int(m) for m in re.findall(r"top\d: class\s+(\d+)", proc.stdout)]
    assert top5 == list(np.argsort(-expected[0])[:5])
    probs = np.fromfile(probs_file, dtype=np.float32).reshape(expected.shape)
    assert np.max(np.abs(probs - expected)) <= 1e-4


@pytest.mark.slow
def test_cpp_app_matches_reference_under_qemu_and_natively(tmp_path):
    require_emulation_setup()
    data = reference.sample_input(CONFIG)
    np.save(tmp_path / "input.npy", data)
    _, weights = load_model(CONFIG)
    expected = reference.forward(CONFIG, weights, data)

    # aarch64: cross-compiled model and app, run by qemu from the bundle folder (libraries beside
    # it).
    folder = bundle(
        tmp_path, compile_so(tmp_path, ["--target", "arm", "--device", "rasp4b"], "m_arm.so")
    )
    proc = run_app(
        folder,
        [*native_command(folder / "mobilenet_app"), "m_arm.so"],
        [tmp_path / "input.npy", tmp_path / "arm.f32"],
        QEMU_CPU="cortex-a72",
    )
    check_app_output(proc, tmp_path / "arm.f32", expected)

    # x86-64: the same app built natively, fed a raw float32 file this time.
    data.astype(np.float32).tofile(tmp_path / "input.f32")
    folder = bundle(tmp_path, compile_so(tmp_path, ["--target", "x86"], "m_x86.so"))
    app = ["./mobilenet_app", "m_x86.so"]
    proc = run_app(folder, app, [tmp_path / "input.f32", tmp_path / "x86.f32"])
    check_app_output(proc, tmp_path / "x86.f32", expected)
    # An explicit thread count is kept.
    proc = run_app(
        folder, app, [tmp_path / "input.f32", tmp_path / "x86_1.f32"], TVM_NUM_THREADS="1"
    )
    check_app_output(proc, tmp_path / "x86_1.f32", expected, threads=1)
    # --repeat N: N more calls timed after the first, whose output is still the one written.
    proc = run_app(folder, [*app, "--repeat", "4"], [tmp_path / "input.f32", tmp_path / "r.f32"])
    check_app_output(proc, tmp_path / "r.f32", expected)
    timed = re.search(
        r"^latency: median ([0-9.]+) ms, min ([0-9.]+), max ([0-9.]+) over 4 calls$",
        proc.stderr,
        re.MULTILINE,
    )
    assert timed, proc.stderr
    median, low, high = map(float, timed.groups())
    assert 0 < low <= median <= high
    bad = run_app(folder, [*app, "--repeat", "0"], [])
    assert bad.returncode == 2 and bad.stderr.startswith("usage:"), bad.stderr
    # The bench's per-process mode times ours through this app too, beside `run`.
    spread = run_cli(
        "bench",
        "--module",
        str(folder / "m_x86.so"),
        "--alpha",
        "0.25",
        "--resolution",
        "32",
        "--processes",
        "1",
        "--threads",
        "1",
        "--repeat",
        "3",
        "--peers",
        "ort",
        "--app",
        str(folder / "mobilenet_app"),
        "--json",
        str(tmp_path / "spread.json"),
    )
    assert spread.returncode == 0, spread.stderr[-2000:]
    rows = json.loads((tmp_path / "spread.json").read_text())["rows"]
    assert {row["name"] for row in rows} >= {"tvm_mobilenet", "tvm_mobilenet_app"}
    assert all(row["median_ms"] > 0 for row in rows)
