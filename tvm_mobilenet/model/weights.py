"""MobileNet v1 weights: generated from a seed or loaded from an .npz, checked, and BN-folded.

Names in an .npz file, per convolution layer L (see `architecture.layers`):
``L.weight`` (OIHW), ``L.bn_gamma``, ``L.bn_beta``, ``L.bn_mean``, ``L.bn_var`` (each (O,));
and ``fc.weight`` (1000, C), ``fc.bias`` (1000,).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tvm_mobilenet.errors import WeightsError
from tvm_mobilenet.files import npz_headers, write_failed
from tvm_mobilenet.model.architecture import Layer, ModelConfig, layers

BN_EPSILON = 1e-5
BN_FIELDS = ("bn_gamma", "bn_beta", "bn_mean", "bn_var")


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight name the model needs, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in layers(config):
        if layer.weight_shape is None:
            continue
        shapes[f"{layer.name}.weight"] = layer.weight_shape
        if layer.has_batchnorm:
            for field in BN_FIELDS:
                shapes[f"{layer.name}.{field}"] = (layer.out_channels,)
        if layer.kind == "fc":
            shapes["fc.bias"] = (layer.out_channels,)
    return shapes


def _random_layer(rng: np.random.Generator, layer: Layer) -> dict[str, np.ndarray]:
    shape = layer.weight_shape
    fan_in = int(np.prod(shape[1:]))
    if layer.kind == "fc":
        # Gain 8 spreads the logits over a few units, so the softmax is far from uniform and
        # a comparison of probabilities means something.
        return {
            "fc.weight": rng.normal(0, 8 / np.sqrt(fan_in), shape).astype(np.float32),
            "fc.bias": rng.normal(0, 0.1, shape[0]).astype(np.float32),
        }
    out = shape[0]
    return {  # He init keeps activations at a stable scale through 27 ReLU layers
        f"{layer.name}.weight": rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32),
        f"{layer.name}.bn_gamma": rng.uniform(0.8, 1.2, out).astype(np.float32),
        f"{layer.name}.bn_beta": rng.normal(0, 0.1, out).astype(np.float32),
        f"{layer.name}.bn_mean": rng.normal(0, 0.1, out).astype(np.float32),
        f"{layer.name}.bn_var": rng.uniform(0.8, 1.2, out).astype(np.float32),
    }


def random_weights(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic weights: the same seed and model give the same arrays on every machine."""
    rng = np.random.default_rng(seed)
    result: dict[str, np.ndarray] = {}
    for layer in layers(config):
        if layer.weight_shape is not None:
            result.update(_random_layer(rng, layer))
    return result


def check_weights(config: ModelConfig, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Raise WeightsError naming the first missing, unexpected or misshapen array (`shapes`: the
    shape of each array the source holds)."""
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(shapes))
    if missing:
        raise WeightsError(
            f"{source}: missing {len(missing)} array(s), first '{missing[0]}' with shape "
            f"{expected[missing[0]]}; write a template with `python -m tvm_mobilenet.model "
            f"--alpha {config.alpha} --resolution {config.resolution} --save-weights FILE.npz`"
        )
    unexpected = sorted(set(shapes) - set(expected))
    if unexpected:
        raise WeightsError(
            f"{source}: unexpected array '{unexpected[0]}' for MobileNet v1 alpha={config.alpha}; "
            "check --alpha and the file's names"
        )
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise WeightsError(
                f"{source}: '{name}' has shape {tuple(shapes[name])}, expected {shape} "
                f"for alpha={config.alpha}; check --alpha or the file"
            )


def _check_headers(config: ModelConfig, path: Path) -> None:
    """Names, shapes, types and sizes from the archive's headers, before any array is read: an
    archive that claims more data than the model's weights is refused, not decompressed."""
    try:
        headers = npz_headers(path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsError(f"weights file {path} is not a readable .npz archive ({err})") from None
    check_weights(config, {name: h.shape for name, (h, _) in headers.items()}, str(path))
    for name, (header, size) in headers.items():
        if not header.numeric:
            raise WeightsError(f"{path}: '{name}' holds {header.dtype} values, not numbers")
        if size != header.data_offset + header.nbytes:
            raise WeightsError(
                f"{path}: '{name}' is {size} bytes in the archive, its header says "
                f"{header.data_offset + header.nbytes}; the file is damaged"
            )


def load_weights(config: ModelConfig, path: str | Path) -> dict[str, np.ndarray]:
    """Load and check an .npz file of weights for `config`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist: pass an existing .npz file")
    _check_headers(config, path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name].astype(np.float32) for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsError(f"weights file {path} is not a readable .npz archive ({err})") from None


def save_weights(weights: dict[str, np.ndarray], path: str | Path) -> None:
    try:
        np.savez(path, **weights)
    except OSError as err:
        raise write_failed(Path(path), "--save-weights", err) from None


def get_weights(config: ModelConfig, weights_file: str | Path | None, seed: int = 0):
    """The weights a command uses: from `weights_file` if given, else generated from `seed`."""
    if weights_file is not None:
        return load_weights(config, weights_file)
    return random_weights(config, seed)


def fold_batchnorm(layer: Layer, weights: dict[str, np.ndarray], dtype=np.float32):
    """(weight, bias) of `layer` with its inference BatchNorm folded in, computed in float64."""
    weight = weights[f"{layer.name}.weight"].astype(np.float64)
    if layer.kind == "fc":
        return weight.astype(dtype), weights["fc.bias"].astype(dtype)
    gamma, beta, mean, var = (weights[f"{layer.name}.{f}"].astype(np.float64) for f in BN_FIELDS)
    scale = gamma / np.sqrt(var + BN_EPSILON)
    folded = weight * scale[:, None, None, None]
    bias = beta - mean * scale
    return folded.astype(dtype), bias.astype(dtype)
