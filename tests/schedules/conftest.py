"""Tasks of MobileNet models and a float64 numpy check of a scheduled convolution."""

import numpy as np
import pytest
import tvm

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model import reference
from tvm_mobilenet.tasks import weight_packing


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
    # NaN, not zeros: an element the schedule never writes fails the check (a zero would pass
    # as a pad's border or a ReLU's output).
    out = tvm.runtime.tensor(np.full(out_shape, np.nan, "float32"))
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
