"""Pointwise and classifier weights pre-packed per block of output channels, on CPUs only."""

import numpy as np

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks import weight_packing
from tvm_mobilenet.tasks.extract import extract_tasks, fuse


def test_packed_block_holds_consecutive_output_channels():
    weight = np.random.default_rng(0).standard_normal((1, 1, 32, 192)).astype("float32")
    packed = weight_packing.pack(weight)
    assert packed.shape == (3, 1, 1, 32, 64)
    assert np.array_equal(packed[2, 0, 0, 5], weight[0, 0, 5, 128:192])
    assert np.array_equal(weight_packing.unpack(packed), weight)


def _weight_shapes(config, device):
    mod, _ = load_model(config)
    return {
        task.shape: [int(d) for d in task.mod["main"].params[1].ty.shape]
        for task in extract_tasks(mod, device.target)
        if task.kind == "pointwise"
    }


def test_avx512_pointwise_tasks_take_packed_weights_wider_than_one_block():
    """Blocks of 32 channels: the width of AVX-512's 1x1 register tiles (2 vectors of 16)."""
    assert weight_packing.block_for(load_device("x86", "avx512").target) == 32
    shapes = _weight_shapes(ModelConfig(0.25, 64), load_device("x86", "avx512"))
    assert shapes["1x2x2x128 k1x1 s1 ->256"] == [8, 1, 1, 128, 32]
    assert shapes["1x4x4x64 k1x1 s1 ->128"] == [4, 1, 1, 64, 32]
    assert shapes["1x8x8x32 k1x1 s1 ->64"] == [2, 1, 1, 32, 32]
    assert shapes["1x16x16x16 k1x1 s1 ->32"] == [1, 1, 16, 32]  # one block: already sequential


def test_avx2_packs_per_vector_of_8_channels():
    """A register tile's 2 vectors read two blocks: two weight streams (AVX2_BLOCK)."""
    assert weight_packing.block_for(load_device("x86", "avx2").target) == 8
    assert weight_packing.block_for(load_device("arm", "rasp4b").target) == 64
    shapes = _weight_shapes(ModelConfig(0.25, 64), load_device("x86", "avx2"))
    assert shapes["1x2x2x128 k1x1 s1 ->256"] == [32, 1, 1, 128, 8]
    assert shapes["1x32x32x8 k1x1 s1 ->16"] == [2, 1, 1, 8, 8]
    assert shapes["1x16x16x16 k1x1 s1 ->32"] == [4, 1, 1, 16, 8]


def test_gpu_pointwise_tasks_keep_hwio():
    shapes = _weight_shapes(ModelConfig(0.25, 64), load_device("mali", "rk3399-mali"))
    assert all(len(shape) == 4 for shape in shapes.values())


def test_classifier_blocks_hold_consecutive_outputs_along_all_of_k():
    weight = np.random.default_rng(0).standard_normal((256, 1000)).astype("float32")
    packed = weight_packing.pack_dense(weight)
    assert packed.shape == (125, 256, 8)
    assert np.array_equal(packed[3, 7], weight[7, 24:32])
    assert np.array_equal(weight_packing.unpack_dense(packed), weight)


def _classifier_weight_shape(device) -> list[int]:
    mod, _ = load_model(ModelConfig(0.25, 64))
    fused = fuse(mod, device.target)
    (func,) = [f for gv, f in fused.functions.items() if "matmul" in gv.name_hint]
    return [int(d) for d in func.params[1].ty.shape]


def test_cpu_classifier_is_packed_and_left_out_of_tuning():
    """Tuning times warm repeats; the classifier streams its weights cold (extract.tunable)."""
    for device in (load_device("x86", "avx2"), load_device("arm", "rasp4b")):
        assert _classifier_weight_shape(device) == [125, 256, 8]
        mod, _ = load_model(ModelConfig(0.25, 64))
        assert not [t for t in extract_tasks(mod, device.target) if "matmul" in t.name]
    assert _classifier_weight_shape(load_device("mali", "rk3399-mali")) == [256, 1000]
