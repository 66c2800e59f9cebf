"""Tune a little, resume, compile with the records, and run the .so in a runtime-only process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import RECORD_FILE, open_log

from .conftest import ROOT, compile_tiny, tune_on

CONFIG = ModelConfig(0.25, 32)
TRIALS = 3


def tune_two_tasks(log_dir, device):
    mod, _ = load_model(CONFIG)
    tasks = extract_tasks(mod, device.target)
    chosen = [
        next(t for t in tasks if t.kind == "depthwise"),
        next(t for t in tasks if t.kind == "pointwise"),
    ]
    log = open_log(log_dir, device.label, device.target_config, CONFIG.key, create=True)
    lines = []
    try:
        report = tune_on(device, log, chosen, [TRIALS, TRIALS], "both", print_fn=lines.append)
    finally:
        log.close()  # the lock: the resume opens the directory again (GC alone released it late)
    return report, lines, tasks


@pytest.mark.slow
def test_tune_resume_compile_run(tmp_path, host_device):
    log_dir = tmp_path / "log"
    # Step 1. A tiny tuning run writes records and reports progress.
    report, lines, all_tasks = tune_two_tasks(log_dir, host_device)
    assert report.measured_now == 2 * TRIALS
    # A real time, not the failure sentinel (1e10 s); loose, since a loaded CI machine is slow.
    assert all(
        r.trials == TRIALS and r.best_seconds and r.best_seconds < 1.0 for r in report.results
    ), [(r.trials, r.best_seconds) for r in report.results]
    assert any("trials 3/3" in line and "best" in line and "ETA" in line for line in lines)
    records = (log_dir / RECORD_FILE).read_bytes()
    assert len(records.splitlines()) == 2 * TRIALS

    # Step 2. The same run again measures nothing and keeps every record.
    again, lines, _ = tune_two_tasks(log_dir, host_device)
    assert again.measured_now == 0
    assert [r.best_seconds for r in again.results] == [r.best_seconds for r in report.results]
    assert (log_dir / RECORD_FILE).read_bytes() == records
    assert all("already in the log" in line for line in lines)

    # Step 3. Compile with the records; the untuned tasks are named.
    output = tmp_path / "mobilenet.so"
    result = compile_tiny(output, "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    untuned = [
        line for line in result.stdout.splitlines() if line.startswith("warning: no tuning record")
    ]
    assert len(untuned) == len(all_tasks) - 2
    assert output.exists() and "max abs error" in result.stdout

    # Step 4. A runtime-only process loads it and matches the reference.
    probe = (
        "import sys; from tvm_mobilenet.cli import run\n"
        "try:\n    run.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "maps = open('/proc/self/maps').read()\n"
        "print('COMPILER_LOADED' if 'libtvm.so' in maps else 'RUNTIME_ONLY')\n"
    )
    out_file = tmp_path / "y.npy"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(output),
            "--json",
            "--repeat",
            "3",
            "--output",
            str(out_file),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "TVM_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[0])
    assert proc.stdout.splitlines()[1] == "RUNTIME_ONLY"
    _, weights = load_model(CONFIG)
    expected = reference.forward(CONFIG, weights, reference.sample_input(CONFIG))
    output_array = np.load(out_file)
    assert np.max(np.abs(output_array - expected)) <= 1e-4
    assert [c for c, _ in summary["top5"]] == list(np.argsort(-expected[0])[:5])
    assert summary["median_ms"] > 0
