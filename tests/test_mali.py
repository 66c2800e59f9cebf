"""Mali: every MobileNet depthwise and pointwise OpenCL kernel run on a real OpenCL implementation
(PoCL) with the module's launch geometry and checked against the float64 reference; a whole-model
Mali .so cross-compiled for the aarch64 host; tuning stopped at once on devices whose TVM runtime
lacks OpenCL."""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest
from tvm import s_tir

from tvm_mobilenet.compile.opencl_check import (
    LAYER_TOLERANCE,
    check_layer,
    kernel_launch,
    scheduled_function,
)
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import RECORD_FILE

from .conftest import assert_usage_error, run_cli
from .emulated import free_port
from .template_tasks import param_id, task_ids, template_task

MALI = load_device("mali", "rk3399-mali")
SMALL = ["--alpha", "0.25", "--resolution", "32"]
# A few full-size layers: the widest depthwise maps (stride 1 and 2) and the deepest pointwise ones.
FULL_SIZE_SHAPES = {
    "1x112x112x32 k3x3 s1 ->32",
    "1x112x112x64 k3x3 s2 ->64",
    "1x14x14x512 k3x3 s1 ->512",
    "1x7x7x1024 k1x1 s1 ->1024",
    "1x14x14x512 k1x1 s1 ->512",
    "1x112x112x32 k1x1 s1 ->64",
}


TASKS = task_ids(ModelConfig(0.25, 64)) + task_ids(ModelConfig(1.0, 224), FULL_SIZE_SHAPES)


def test_every_kind_is_covered():
    kinds = {ident.split("-")[0] for _, ident in TASKS}
    assert {"depthwise", "pointwise"} <= kinds and len(TASKS) == 19 + len(FULL_SIZE_SHAPES)


@pytest.mark.parametrize("item", TASKS, ids=param_id)
def test_kernel_matches_reference_on_opencl(item, opencl):
    task = template_task(MALI, item)
    launch = kernel_launch(scheduled_function(task, MALI, log=None), MALI.target)
    check = check_layer(task, launch, opencl)
    assert check.max_abs_error <= LAYER_TOLERANCE, (launch.global_size, launch.local_size)
    assert (
        launch.private_floats <= 4 * 8
    )  # a few float4 accumulators per work-item: registers on a Mali


@pytest.mark.parametrize("item", TASKS[::4], ids=param_id)
def test_sampled_knobs_match_reference_on_opencl(item, opencl):
    """Schedules the template search samples (other tiles and work-group sizes) compute the same."""
    task = template_task(MALI, item)
    for seed in (1, 2):
        sch = s_tir.Schedule(task.mod, seed=seed)
        apply_template(sch, template_kind(task.mod), "mali", MALI.target, tuning=True)
        launch = kernel_launch(sch.mod, MALI.target)
        assert check_layer(task, launch, opencl, seed=seed).max_abs_error <= LAYER_TOLERANCE


def test_wrong_launch_geometry_is_caught(opencl):
    """Half the work-groups leave outputs unwritten: the check must fail, not pass by luck."""
    task = template_task(MALI, next(item for item in TASKS if item[1].startswith("depthwise")))
    launch = kernel_launch(scheduled_function(task, MALI, log=None), MALI.target)
    half = (launch.global_size[0] // 2,)
    assert (
        check_layer(task, dataclasses.replace(launch, global_size=half), opencl).max_abs_error
        > LAYER_TOLERANCE
    )


def test_verify_cli_prints_every_layer(opencl):
    result = run_cli(
        "verify", "--target", "mali", "--device", "g76-mali", *SMALL, "--no-log", timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.split()[:1] in (["depthwise"], ["pointwise"])
    ]
    assert len(rows) == 18  # 13 depthwise-separable blocks minus the ones sharing a shape
    assert all(float(row[-1]) <= LAYER_TOLERANCE for row in rows)
    assert "all 19 kernels match" in result.stdout


def test_verify_without_opencl_device(tmp_path):
    result = run_cli(
        "verify", "--target", "mali", *SMALL, "--no-log", env={"OCL_ICD_VENDORS": str(tmp_path)}
    )
    assert_usage_error(result, "tvm-mobilenet setup opencl")


def test_verify_refuses_cpu_target():
    assert_usage_error(run_cli("verify", "--target", "x86", *SMALL), "--target mali")


@pytest.mark.slow
def test_whole_model_mali_so_is_cross_compiled(tmp_path):
    if shutil.which(MALI.cross_compiler) is None:
        pytest.skip(f"{MALI.cross_compiler} is not installed: run `tvm-mobilenet setup emulation`")
    output = tmp_path / "m_mali.so"
    result = run_cli(
        "compile",
        "--target",
        "mali",
        "--device",
        "rk3399-mali",
        *SMALL,
        "--no-log",
        "-o",
        str(output),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "NOT verified" in result.stdout  # no OpenCL device over RPC: written with the warning
    data = output.read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 183  # EM_AARCH64
    assert data.count(b"__kernel void") >= 19  # the OpenCL C of every kernel travels in the .so


def _wait_for_key(rpc_farm, tracker, key, timeout=30.0):
    deadline = time.monotonic() + timeout
    while rpc_farm.query(tracker).get(key) is None:
        assert time.monotonic() < deadline, f"no server registered under '{key}' within {timeout} s"
        time.sleep(0.3)


def test_tuning_stops_on_a_runtime_without_opencl(tmp_path):
    """A real tracker and RPC server on 127.0.0.1 whose TVM runtime (this PyPI build) has no
    OpenCL."""
    import tvm.rpc

    from tvm_mobilenet.farm import tracker as rpc_farm

    tracker, _ = rpc_farm.start_tracker(port=free_port(), state_dir=tmp_path / "farm")
    server = None
    try:
        port = free_port()
        server = tvm.rpc.Server(
            host="127.0.0.1",
            port=port,
            port_end=port + 1,
            tracker_addr=(tracker.host, tracker.port),
            key="no-opencl",
        )
        _wait_for_key(rpc_farm, tracker, "no-opencl")
        result = run_cli(
            "tune",
            "--target",
            "mali",
            "--device",
            "rk3399-mali",
            *SMALL,
            "--trials",
            "2",
            "--log-dir",
            str(tmp_path / "log"),
            "--rpc-tracker",
            str(tracker),
            "--rpc-key",
            "no-opencl",
            timeout=300,
        )
        assert_usage_error(result, "without opencl", "USE_OPENCL=ON")
        # stopped before anything was tuned (the log may exist: it is locked before workers start)
        records = tmp_path / "log" / RECORD_FILE
        assert not records.exists() or not records.read_text().strip()
    finally:
        if server is not None:
            server.terminate()
        rpc_farm.stop(tmp_path / "farm")


def test_verify_uses_the_logs_best_record(tmp_path, opencl):
    """With a log, the kernel checked is the tuned one (a sampled schedule), not the default."""
    from tvm.s_tir import meta_schedule as ms

    from tvm_mobilenet.model.source import BuiltinMobileNet
    from tvm_mobilenet.tune.log import open_log

    model = BuiltinMobileNet(ModelConfig(0.25, 32))
    log = open_log(tmp_path, MALI.label, MALI.target_config, model.key, create=True)
    task = next(t for t in extract_tasks(model.module(), MALI.target) if t.kind == "pointwise")
    sch = s_tir.Schedule(task.mod, seed=7)
    apply_template(sch, "conv", "mali", MALI.target, tuning=True)
    record = ms.database.TuningRecord(
        sch.trace, log.database.commit_workload(task.mod), [1e-3], MALI.target, None
    )
    log.database.commit_tuning_record(record)
    tuned = kernel_launch(scheduled_function(task, MALI, log), MALI.target)
    assert tuned.source == kernel_launch(sch.mod, MALI.target).source
    assert tuned.source != kernel_launch(scheduled_function(task, MALI, None), MALI.target).source
    assert check_layer(task, tuned, opencl).max_abs_error <= LAYER_TOLERANCE
