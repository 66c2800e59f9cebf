"""Python entry point of the model stage: a MobileNet v1 Relax module with its weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tvm

from ..architecture import ModelConfig
from ..network import build_module
from ..weights import get_weights


def load_model(config: ModelConfig, weights_file: str | Path | None = None,
               seed: int = 0) -> tuple[tvm.IRModule, dict[str, np.ndarray]]:
    """The Relax module of `config` and the weights in it (from `weights_file`, else from `seed`)."""
    weights = get_weights(config, weights_file, seed)
    return build_module(config, weights), weights
