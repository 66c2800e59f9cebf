"""Weights files: generated deterministically, saved, loaded and checked by name and shape."""

import numpy as np
import pytest

from tvm_mobilenet.errors import WeightsError
from tvm_mobilenet.model.architecture import ModelConfig, layers
from tvm_mobilenet.model.weights import (
    expected_shapes,
    fold_batchnorm,
    load_weights,
    random_weights,
    save_weights,
)

CONFIG = ModelConfig(0.25, 64)


def test_generated_weights_are_deterministic_and_complete():
    first, second = random_weights(CONFIG, seed=5), random_weights(CONFIG, seed=5)
    assert set(first) == set(expected_shapes(CONFIG))
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not np.array_equal(first["conv1.weight"], random_weights(CONFIG, seed=6)["conv1.weight"])


def test_roundtrip(tmp_path):
    weights = random_weights(CONFIG)
    save_weights(weights, tmp_path / "w.npz")
    loaded = load_weights(CONFIG, tmp_path / "w.npz")
    assert all(np.array_equal(weights[k], loaded[k]) for k in weights)


def test_wrong_shape_names_the_array(tmp_path):
    weights = random_weights(CONFIG)
    weights["block3.pw.weight"] = weights["block3.pw.weight"][:, :-1]
    save_weights(weights, tmp_path / "w.npz")
    with pytest.raises(WeightsError, match=r"block3\.pw\.weight"):
        load_weights(CONFIG, tmp_path / "w.npz")


def test_missing_and_foreign_files(tmp_path):
    weights = random_weights(CONFIG)
    del weights["fc.bias"]
    save_weights(weights, tmp_path / "w.npz")
    with pytest.raises(WeightsError, match="missing 1 array"):
        load_weights(CONFIG, tmp_path / "w.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(WeightsError, match=r"not a readable \.npz"):
        load_weights(CONFIG, tmp_path / "junk.npz")
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(CONFIG, tmp_path / "absent.npz")


def test_batchnorm_folding_is_exact():
    weights = random_weights(CONFIG)
    layer = layers(CONFIG)[1]
    folded, bias = fold_batchnorm(layer, weights, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=layer.out_channels)
    gamma, beta, mean, var = (
        weights[f"{layer.name}.{f}"].astype(np.float64)
        for f in ("bn_gamma", "bn_beta", "bn_mean", "bn_var")
    )
    w = weights[f"{layer.name}.weight"].astype(np.float64)[:, 0, 1, 1]
    bn = (w * x - mean) * gamma / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(folded[:, 0, 1, 1] * x + bias, bn, rtol=1e-12)
