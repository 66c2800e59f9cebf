"""Functions without a template or a record: softmax keeps its O(n) loops (DLight's CPU rule would
recompute the row's max, exps and sum for each of the 1000 outputs), the ARM classifier gets the
dense register tile (x86 leaves it to DLight), and both compute what numpy does."""

import numpy as np
import pytest
import tvm
from tvm.ir import assert_structural_equal
from tvm.s_tir import dlight

from tvm_mobilenet.compile.default_schedules import default_schedules
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks.extract import extract_tasks

CONFIG = ModelConfig(0.25, 32)
RASP4B = load_device("arm", "rasp4b")
AVX2 = load_device("x86", "avx2")


def task_function(device, name_part: str) -> tvm.tirx.PrimFunc:
    mod, _ = load_model(CONFIG)
    (task,) = [t for t in extract_tasks(mod, device.target) if name_part in t.name]
    return next(iter(task.mod.functions.values()))


def schedule(func, device) -> tvm.tirx.PrimFunc:
    with device.target:
        mod = default_schedules(device.schedule_family, device.target)(tvm.IRModule({"main": func}))
    return mod["main"]


def run_on_host(func, host, arrays) -> np.ndarray:
    tensors = [tvm.runtime.tensor(array) for array in arrays]
    tvm.compile(tvm.IRModule({"main": func}), target=host.target)["main"](*tensors)
    return tensors[-1].numpy()


def shapes(func):
    return [tuple(int(d) for d in param.ty.shape) for param in func.params]


@pytest.mark.parametrize("device", [RASP4B, AVX2], ids=lambda d: d.label)
def test_softmax_keeps_its_loops(device, x86_host):
    func = task_function(device, "softmax")
    scheduled = schedule(func, device)
    assert scheduled.attrs["tirx.is_scheduled"]
    assert_structural_equal(scheduled.body, func.body)  # no loop nest moved under the outputs
    logits = np.random.default_rng(0).standard_normal(shapes(func)[0]).astype("float32")
    out = run_on_host(scheduled, x86_host, [logits, np.zeros_like(logits)])
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert np.max(np.abs(out - expected)) < 1e-6


def test_arm_classifier_gets_the_dense_tile(x86_host):
    func = task_function(RASP4B, "matmul")
    scheduled = schedule(func, RASP4B)
    assert "T.vectorized" in scheduled.script() and "T.parallel" in scheduled.script()
    rng = np.random.default_rng(0)
    data, weight, bias, out = (rng.standard_normal(s).astype("float32") for s in shapes(func))
    result = run_on_host(scheduled, x86_host, [data, weight, bias, out])
    expected = data.astype(np.float64) @ weight + bias
    assert np.max(np.abs(result - expected)) < 1e-4


def test_x86_classifier_is_left_to_dlight():
    func = task_function(AVX2, "matmul")
    with AVX2.target:
        dlight_only = dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction())(
            tvm.IRModule({"main": func})
        )
    assert_structural_equal(schedule(func, AVX2), dlight_only["main"])
