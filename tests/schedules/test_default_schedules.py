"""Functions without a template or a record (schedules/cpu_untuned.py): softmax keeps its O(n)
loops (DLight's CPU rule would recompute the row's max, exps and sum for each of the 1000 outputs),
the classifier gets the dense register tile, mean pooling channel vectors, and all compute what
numpy does; on AVX2, tiny convolutions stay off the thread pool."""

import numpy as np
import pytest
import tvm
from tvm import s_tir
from tvm.ir import assert_structural_equal
from tvm.s_tir import dlight

from tvm_mobilenet.compile.default_schedules import default_schedules
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks.extract import extract_tasks, fuse
from tvm_mobilenet.tasks.weight_packing import unpack_dense

CONFIG = ModelConfig(0.25, 32)
RASP4B = load_device("arm", "rasp4b")
AVX2 = load_device("x86", "avx2")


def task_function(device, name_part: str) -> tvm.tirx.PrimFunc:
    """The fused function whose name has `name_part` (the classifier is no tuning task)."""
    mod, _ = load_model(CONFIG)
    fused = fuse(mod, device.target)
    (func,) = [f for gv, f in fused.functions.items() if name_part in gv.name_hint]
    return func.with_attr("global_symbol", "main")


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


@pytest.mark.parametrize("device", [RASP4B, AVX2], ids=lambda d: d.label)
def test_classifier_gets_the_dense_tile_over_packed_weights(device, x86_host):
    func = task_function(device, "matmul")
    assert shapes(func)[1] == (125, 256, 8)  # 1000 classes in blocks of 8, each one stream
    scheduled = schedule(func, device)
    assert "T.vectorized" in scheduled.script() and "T.parallel" in scheduled.script()
    assert redundancy(scheduled) == 1.0  # DLight's GEMV rule read W down its columns
    # a tile accumulates 5 blocks (5 streams) over all of k: k, blocks, vectors of a block, lanes
    sch = s_tir.Schedule(tvm.IRModule({"main": scheduled}))
    loops = [int(sch.get(loop).extent) for loop in sch.get_loops(sch.get_sblock("matmul_update"))]
    assert loops[-4:] == ([256, 5, 2, 4] if device is RASP4B else [256, 5, 1, 8])
    rng = np.random.default_rng(0)
    data, weight, bias, out = (rng.standard_normal(s).astype("float32") for s in shapes(func))
    result = run_on_host(scheduled, x86_host, [data, weight, bias, out])
    expected = data.astype(np.float64) @ unpack_dense(weight) + bias
    assert np.max(np.abs(result - expected)) < 1e-4


def test_mean_pooling_reduces_with_channel_vectors(x86_host):
    func = task_function(AVX2, "mean")
    scheduled = schedule(func, AVX2)
    assert "T.vectorized" in scheduled.script()
    assert redundancy(scheduled) == 1.0
    data = np.random.default_rng(0).standard_normal(shapes(func)[0]).astype("float32")
    out = run_on_host(scheduled, x86_host, [data, np.zeros(shapes(func)[-1], "float32")])
    assert np.max(np.abs(out.reshape(-1) - data.mean(axis=(1, 2)).reshape(-1))) < 1e-6


def test_dlight_softmax_recomputes_the_row_for_each_output():
    """What the untuned rules replace: DLight's reduction rule runs softmax's max, exps and sum
    under every output (redundancy = the 1000 classes' worth of work, here the 1000 classes)."""
    func = task_function(AVX2, "softmax")
    with AVX2.target:
        dlight_only = dlight.ApplyDefaultSchedule(dlight.cpu.Reduction())(
            tvm.IRModule({"main": func})
        )
    assert redundancy(dlight_only["main"]) >= 1000
    assert redundancy(schedule(func, AVX2)) == 1.0


def test_avx2_tiny_kernels_stay_on_the_calling_thread():
    """0.25/32's kernels are all under 4 MFLOP: no thread-pool launch (x86 AVX2 only)."""
    mod, _ = load_model(CONFIG)
    tasks = [t for t in extract_tasks(mod, AVX2.target) if t.kind in ("depthwise", "pointwise")]
    scripts = [schedule(next(iter(t.mod.functions.values())), AVX2).script() for t in tasks]
    assert tasks and not any("T.parallel" in script for script in scripts)


def redundancy(func) -> float:
    """The largest ratio, over the function's root blocks, of the iterations of the loops around
    a block to its own iteration domain: 1 when every block runs once per point of its domain."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    worst = 1.0
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        loops = np.prod([int(sch.get(loop).extent) for loop in sch.get_loops(block)] or [1])
        domain = np.prod([int(iv.dom.extent) for iv in sch.get(block).iter_vars] or [1])
        worst = max(worst, float(loops) / float(domain))
    return worst
