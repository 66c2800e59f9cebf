"""ARM (NEON) and Mali (OpenCL) templates generate code for every MobileNet depthwise and
pointwise shape; ARM modules cross-compile into an aarch64 shared library, pointwise ones multiply
by lane (`fmla v.4s, v.4s, v.s[k]`), and the ARM schedules compute what numpy does (compiled for
this host: the same TIR, another code generator)."""

import re
import shutil
import subprocess

import pytest
import tvm
from tvm import s_tir

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.schedules.templates import apply_template, template_kind

from ..template_tasks import all_task_ids, param_id, template_task
from .conftest import check_against_numpy

RASP4B = load_device("arm", "rasp4b")
MALI = load_device("mali", "rk3399-mali")
CROSS_CXX = "aarch64-linux-gnu-g++"
FMLA_BY_LANE = re.compile(r"fmla\s+v\d+\.4s, v\d+\.4s, v\d+\.s\[[0-3]\]")


TASKS = all_task_ids()


def scheduled(item, device, tuning=False, seed=3):
    task = template_task(device, item)
    sch = s_tir.Schedule(task.mod, seed=seed)
    apply_template(sch, template_kind(task.mod), device.schedule_family, device.target, tuning)
    return sch.mod


@pytest.mark.parametrize("item", TASKS, ids=param_id)
def test_arm_codegen(item, tmp_path):
    executable = tvm.compile(scheduled(item, RASP4B), target=RASP4B.target)
    assembly = executable.mod.inspect_source("asm")
    assert "fmla" in assembly  # NEON fused multiply-add on vector registers
    if item[1].startswith("pointwise"):  # 4 input channels per load, one fmla per lane
        assert FMLA_BY_LANE.search(assembly)
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
def test_arm_schedule_matches_numpy(item, x86_host):
    mod = scheduled(item, RASP4B)
    assert check_against_numpy(mod, template_task(RASP4B, item), x86_host.target) < 1e-4


@pytest.mark.parametrize("item", TASKS[::6], ids=param_id)
@pytest.mark.parametrize("seed", [1, 2])
def test_arm_sampled_knobs_match_numpy(item, seed, x86_host):
    mod = scheduled(item, RASP4B, tuning=True, seed=seed)
    assert check_against_numpy(mod, template_task(RASP4B, item), x86_host.target) < 1e-4


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
