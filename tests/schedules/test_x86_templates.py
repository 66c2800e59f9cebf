"""x86 templates: every MobileNet depthwise and pointwise shape equals numpy, with the heuristic
knobs and with randomly sampled ones (what tuning explores)."""

import pytest
import tvm
from tvm import s_tir

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.schedules.templates import apply_template, template_kind

from .conftest import check_against_numpy, task_id, template_tasks

HOST = load_device("x86")
TASKS = template_tasks(HOST)


def test_every_depthwise_and_pointwise_task_has_a_template():
    kinds = {task.kind for task in TASKS}
    assert {"depthwise", "pointwise"} <= kinds
    assert sum(task.kind in ("depthwise", "pointwise") for task in TASKS) == 36  # 18 per model


@pytest.mark.parametrize("task", TASKS, ids=task_id)
def test_heuristic_schedule_matches_numpy(task):
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", HOST.target, tuning=False)
    assert check_against_numpy(sch.mod, task, HOST.target) < 1e-4


@pytest.mark.parametrize("task", TASKS[::6], ids=task_id)
@pytest.mark.parametrize("seed", [1, 2])
def test_sampled_knobs_match_numpy(task, seed):
    sch = s_tir.Schedule(task.mod, seed=seed)
    apply_template(sch, template_kind(task.mod), "x86", HOST.target, tuning=True)
    assert check_against_numpy(sch.mod, task, HOST.target) < 1e-4


@pytest.mark.parametrize("task", TASKS[::5], ids=task_id)
def test_avx2_shapes_match_numpy(task):
    avx2 = load_device("x86", "avx2")
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", avx2.target, tuning=False)
    assert check_against_numpy(sch.mod, task, tvm.target.Target(avx2.target_config)) < 1e-4
