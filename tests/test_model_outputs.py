"""The Relax model, compiled for this host, against the float64 numpy reference."""

import os

import numpy as np
import pytest
import tvm
from tvm import relax

from tvm_mobilenet.compile.build import build
from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model


def compiled_probabilities(config: ModelConfig, host_device, seed: int = 0):
    mod, weights = load_model(config, seed=seed)
    vm = relax.VirtualMachine(
        build(mod, host_device.target, None, host_device.schedule_family), tvm.cpu()
    )
    data = reference.sample_input(config)
    return vm["main"](tvm.runtime.tensor(data, tvm.cpu())).numpy(), reference.forward(
        config, weights, data
    )


@pytest.mark.parametrize(
    "alpha,resolution,batch", [(0.25, 64, 1), (0.5, 96, 2), (0.75, 128, 1), (1.0, 32, 1)]
)
def test_matches_float64_reference(alpha, resolution, batch, host_device):
    output, expected = compiled_probabilities(ModelConfig(alpha, resolution, batch), host_device)
    assert output.shape == (batch, 1000)
    np.testing.assert_allclose(output.sum(axis=1), 1.0, rtol=1e-5)
    assert np.max(np.abs(output - expected)) <= 1e-4
    # The softmax is far from uniform, so the comparison above is not vacuous.
    assert expected.max() > 50 / 1000
    assert np.array_equal(np.argsort(-output[0])[:5], np.argsort(-expected[0])[:5])


def test_reference_convolution_against_direct_loops():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    result = reference.conv2d(x, w, stride=2)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # "same", stride 2, size 5: one each side
    direct = np.zeros((1, 3, 3, 3))
    for o in range(3):
        for i in range(3):
            for j in range(3):
                direct[0, o, i, j] = np.sum(
                    padded[0, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * w[o]
                )
    np.testing.assert_allclose(result, direct, rtol=1e-12)


def test_weights_change_outputs(host_device):
    config = ModelConfig(0.25, 32)
    first, _ = compiled_probabilities(config, host_device, seed=0)
    second, _ = compiled_probabilities(config, host_device, seed=1)
    assert np.max(np.abs(first - second)) > 1e-3


def test_compile_checks_every_call_of_the_module_on_every_core(tmp_path, monkeypatch, host_device):
    """A module right on its first call and wrong on a later one (a race between the threads of a
    kernel shows only sometimes) is not written; the check runs it at every core, as `run` does."""
    from tvm_mobilenet.compile import api
    from tvm_mobilenet.errors import VerificationError
    from tvm_mobilenet.model.source import BuiltinMobileNet
    from tvm_mobilenet.run.threads import available_cores

    real_load = api.load_module_file
    threads = []

    def load_racy(path):
        run = real_load(path)

        def racy(data):
            output = run(data)
            threads.append(os.environ.get("TVM_NUM_THREADS"))
            return np.roll(output, 1, axis=-1) if len(threads) == api.LOCAL_CHECK_CALLS else output

        return racy

    monkeypatch.setattr(api, "load_module_file", load_racy)
    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    output = tmp_path / "m.so"
    source = BuiltinMobileNet(ModelConfig(0.25, 32))
    with pytest.raises(VerificationError, match="disagrees with the float64 reference"):
        api.compile_model(api.CompileArgs(source, host_device, output, None), print_fn=print)
    assert api.LOCAL_CHECK_CALLS > 1
    assert threads == [str(available_cores())] * api.LOCAL_CHECK_CALLS
    assert not output.exists() and not list(tmp_path.glob("*.so"))
