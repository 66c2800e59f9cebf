"""5x5 depthwise convolutions (MobileNetV3's) in the depthwise templates, for V3Small's 5x5 layers:
on x86 they equal numpy with heuristic and sampled knobs; for ARM and Mali they make vector code."""

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import Layer
from tvm_mobilenet.model.relax_builder import conv_bn_relu
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.tasks.extract import extract_tasks

from .conftest import check_against_numpy

# MobileNetV3Small's 5x5 depthwise layers (input size, channels, stride), from Keras's
# MobileNetV3Small: at 1.0/224 (expansion channels 96 ... 576) and at 0.25/96 (fewer channels than
# one AVX2 vector, 3x3 maps).
V3_SMALL_5X5 = [
    (28, 96, 2),
    (14, 240, 1),
    (14, 120, 1),
    (14, 144, 1),
    (14, 288, 2),
    (7, 576, 1),
    (12, 32, 2),
    (6, 96, 1),
    (6, 48, 1),
    (3, 144, 1),
]
X86 = load_device("x86", "avx2")
RASP4B = load_device("arm", "rasp4b")
MALI = load_device("mali", "rk3399-mali")


def shape_id(layer) -> str:
    size, channels, stride = layer
    return f"{size}x{size}x{channels}s{stride}"


def depthwise_module(size: int, channels: int, stride: int) -> tvm.IRModule:
    """One NHWC 5x5 depthwise convolution + bias + ReLU, TF "same" padding, built as the built-in
    model builds its layers."""
    layer = Layer("dw", "depthwise", channels, channels, size, kernel=5, stride=stride)
    rng = np.random.default_rng(size * channels)
    weight = rng.uniform(-1, 1, layer.weight_shape).astype("float32")
    bias = rng.uniform(-1, 1, channels).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, size, size, channels), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(conv_bn_relu(bb, x, layer, weight, bias))
        bb.emit_func_output(out)
    return bb.get()


def scheduled(layer, device, seed: int = 0):
    """The depthwise task of `layer` for `device`, scheduled by its template (seed 0: heuristic
    knobs; otherwise sampled, as tuning does), and the task."""
    (task,) = extract_tasks(depthwise_module(*layer), device.target, "depthwise")
    assert task.shape.split()[1:3] == ["k5x5", f"s{layer[2]}"], task.shape
    sch = s_tir.Schedule(task.mod, seed=max(seed, 1))
    apply_template(sch, template_kind(task.mod), device.schedule_family, device.target, seed > 0)
    return sch.mod, task


@pytest.mark.parametrize("layer", V3_SMALL_5X5, ids=shape_id)
def test_x86_heuristic_knobs_match_numpy(layer):
    mod, task = scheduled(layer, X86)
    assert check_against_numpy(mod, task, X86.target) < 1e-4


@pytest.mark.parametrize("layer", V3_SMALL_5X5[::2], ids=shape_id)
@pytest.mark.parametrize("seed", [1, 2])
def test_x86_sampled_knobs_match_numpy(layer, seed):
    mod, task = scheduled(layer, X86, seed)
    assert check_against_numpy(mod, task, X86.target) < 1e-4


@pytest.mark.parametrize("layer", V3_SMALL_5X5, ids=shape_id)
def test_arm_codegen(layer):
    mod, _ = scheduled(layer, RASP4B)
    assert "fmla" in tvm.compile(mod, target=RASP4B.target).mod.inspect_source("asm")


@pytest.mark.parametrize("layer", V3_SMALL_5X5, ids=shape_id)
def test_mali_codegen(layer):
    mod, _ = scheduled(layer, MALI)
    source = tvm.compile(mod, target=MALI.target).mod.imports[0].inspect_source()
    assert "__kernel" in source and "float4" in source


@pytest.mark.parametrize("layer", V3_SMALL_5X5[1::2], ids=shape_id)
def test_mali_sampled_knobs_codegen(layer):
    mod, _ = scheduled(layer, MALI, seed=1)
    assert "__kernel" in tvm.compile(mod, target=MALI.target).mod.imports[0].inspect_source()
