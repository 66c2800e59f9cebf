"""ARM (NEON) and Mali (OpenCL) templates generate code for every MobileNet depthwise and
pointwise shape; ARM modules cross-compile into an aarch64 shared library."""

import shutil
import subprocess

import pytest
import tvm
from tvm import s_tir

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.schedules.templates import apply_template, template_kind

from ..template_tasks import all_task_ids, param_id, template_task

RASP4B = load_device("arm", "rasp4b")
MALI = load_device("mali", "rk3399-mali")
CROSS_CXX = "aarch64-linux-gnu-g++"


TASKS = all_task_ids()


def scheduled(item, device, tuning=False):
    task = template_task(device, item)
    sch = s_tir.Schedule(task.mod, seed=3)
    apply_template(sch, template_kind(task.mod), device.schedule_family, device.target, tuning)
    return sch.mod


@pytest.mark.parametrize("item", TASKS, ids=param_id)
def test_arm_codegen(item, tmp_path):
    executable = tvm.compile(scheduled(item, RASP4B), target=RASP4B.target)
    assembly = executable.mod.inspect_source("asm")
    assert "fmla" in assembly  # NEON fused multiply-add on vector registers
    if shutil.which(CROSS_CXX):
        path = tmp_path / "task.so"
        executable.export_library(str(path), fcompile=tvm.support.cc.cross_compiler(CROSS_CXX))
        assert (
            "ARM aarch64"
            in subprocess.run(
                ["file", "-b", str(path)], check=False, capture_output=True, text=True
            ).stdout
            or path.read_bytes()[18] == 183
        )  # e_machine EM_AARCH64 when `file` is absent


@pytest.mark.parametrize("item", TASKS, ids=param_id)
def test_mali_codegen(item):
    mod = scheduled(item, MALI)
    source = tvm.compile(mod, target=MALI.target).mod.imports[0].inspect_source()
    assert "__kernel" in source and "float4" in source
    assert "get_local_id" in source and "get_group_id" in source


@pytest.mark.parametrize("item", TASKS[::9], ids=param_id)
def test_mali_sampled_knobs_codegen(item):
    source = (
        tvm.compile(scheduled(item, MALI, tuning=True), target=MALI.target)
        .mod.imports[0]
        .inspect_source()
    )
    assert "__kernel" in source
