"""Tasks of MobileNet models and a float64 numpy check of a scheduled convolution."""

import numpy as np
import pytest
import tvm

from tvm_mobilenet.model import reference
from tvm_mobilenet.tasks import weight_packing
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.schedules.templates import template_kind
from tvm_mobilenet.tasks.extract import extract_tasks

# 1.0/224 has every channel count and spatial size of the paper; 0.25/64 has 8-channel layers,
# narrower than one AVX-512 register, and 2x2 maps.
CONFIGS = [ModelConfig(1.0, 224), ModelConfig(0.25, 64)]


def template_tasks(device):
    tasks = []
    for config in CONFIGS:
        mod, _ = load_model(config)
        tasks += [t for t in extract_tasks(mod, device.target) if template_kind(t.mod)]
    return tasks


def task_id(task):
    return f"{task.kind}-{task.shape.replace(' ', '')}"


def shapes(func):
    return [tuple(int(d) for d in p.ty.shape) for p in func.params]


def check_against_numpy(mod, task, target):
    """Run the scheduled module on random inputs and compare with numpy; returns max abs error."""
    func = mod["main"]
    data_shape, weight_shape, bias_shape, out_shape = shapes(func)
    rng = np.random.default_rng(0)
    arrays = [
        rng.uniform(-1, 1, s).astype("float32") for s in (data_shape, weight_shape, bias_shape)
    ]
    out = tvm.runtime.tensor(np.zeros(out_shape, "float32"))
    lib = tvm.compile(mod, target=target).jit()
    lib(*[tvm.runtime.tensor(a) for a in arrays], out)
    if len(weight_shape) == 5:  # pre-packed pointwise weights: numpy takes them as HWIO
        arrays[1] = weight_packing.unpack(arrays[1])
    stride = data_shape[1] // out_shape[1]
    expected = reference.conv_bias_relu_nhwc(*arrays, task.kind == "depthwise", stride)
    return float(np.max(np.abs(out.numpy() - expected)))


@pytest.fixture(scope="session")
def x86_host():
    return load_device("x86")
