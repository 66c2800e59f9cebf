"""Python entry point of the model stage: where a model comes from (the built-in MobileNet v1 or a
file).

Tune, compile (and bench) take a `ModelSource` and never ask which kind it is."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.frameworks import model_format, run_source
from tvm_mobilenet.model.importers import ImportedModel, file_sha256, load_model_file
from tvm_mobilenet.model.relax_builder import build_module
from tvm_mobilenet.model.weights import get_weights


def load_model(
    config: ModelConfig, weights_file: str | Path | None = None, seed: int = 0
) -> tuple[tvm.IRModule, dict[str, np.ndarray]]:
    """The Relax module of `config` and the weights in it (from `weights_file`, else from
    `seed`)."""
    weights = get_weights(config, weights_file, seed)
    return build_module(config, weights), weights


@dataclass
class Expected:
    """What a compiled module's output is checked against."""

    against: str  # e.g. "the float64 reference", "ONNX Runtime"
    output: np.ndarray


class ModelSource(ABC):
    """A model to tune and compile: its Relax module, input, log identity and trusted output."""

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The shape `main` takes (the compiled module reports it to `run`)."""

    @property
    @abstractmethod
    def key(self) -> dict:
        """What the tuning log records as its model: a log for another model is refused."""

    @property
    @abstractmethod
    def log_name(self) -> str:
        """This model's sub-directory of a device's log directory."""

    @abstractmethod
    def describe(self) -> str:
        """One line for progress output."""

    def input_files(self) -> dict[str, Path]:
        """The files the model is read from, by flag (an output must not overwrite them)."""
        return {}

    @abstractmethod
    def module(self) -> tvm.IRModule:
        """The Relax module, `main(input) -> output`, weights as constants."""

    @abstractmethod
    def expected(self, data: np.ndarray) -> Expected:
        """The trusted output for `data`; raises SourceCheckUnavailable if it cannot be had here."""

    def sample_input(self) -> np.ndarray:
        """The fixed input compile verifies with (and `run` uses by default)."""
        return reference.random_input(self.input_shape)


class BuiltinMobileNet(ModelSource):
    """MobileNet v1 built from `config`, checked against the float64 numpy reference."""

    def __init__(self, config: ModelConfig, weights_file: str | Path | None = None, seed: int = 0):
        self.config, self.weights_file, self.seed = config, weights_file, seed

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def key(self) -> dict:
        return self.config.key

    @property
    def log_name(self) -> str:
        c = self.config
        return f"mobilenet_v1-{c.alpha}-{c.resolution}-b{c.batch}"

    def describe(self) -> str:
        c = self.config
        return f"MobileNet v1 alpha={c.alpha} resolution={c.resolution} batch={c.batch}"

    def input_files(self) -> dict[str, Path]:
        return {"--weights": Path(self.weights_file)} if self.weights_file else {}

    @functools.cached_property
    def _built(self) -> tuple[tvm.IRModule, dict[str, np.ndarray]]:
        return load_model(self.config, self.weights_file, self.seed)

    def module(self) -> tvm.IRModule:
        return self._built[0]

    def expected(self, data: np.ndarray) -> Expected:
        return Expected(
            "the float64 reference", reference.forward(self.config, self._built[1], data)
        )


class ModelFile(ModelSource):
    """A .onnx, .tflite or .pt2 file, checked against its own framework's runtime."""

    def __init__(
        self, path: str | Path, input_shape: tuple[int, ...] | None = None, trusted: bool = False
    ):
        self.path, self.given_shape, self.trusted = Path(path), input_shape, trusted
        # an unknown suffix, a missing file, a .pt2 not trusted: fail before anything else
        model_format(self.path, trusted)

    @functools.cached_property
    def imported(self) -> ImportedModel:
        return load_model_file(self.path, self.given_shape, self.trusted)

    @functools.cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.imported.input_shape

    @property
    def key(self) -> dict:
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "input_shape": list(self.input_shape),
        }

    @property
    def log_name(self) -> str:
        return f"{self.path.stem}-{self.sha256[:12]}"

    def input_files(self) -> dict[str, Path]:
        return {"--model": self.path}

    def describe(self) -> str:
        m = self.imported
        return (
            f"{self.path.name} ({m.source_format}, input '{m.input_name}' "
            f"{'x'.join(map(str, m.input_shape))} {m.layout})"
        )

    def module(self) -> tvm.IRModule:
        return self.imported.mod

    def expected(self, data: np.ndarray) -> Expected:
        framework, output = run_source(self.imported.source_format, self.path, data)
        return Expected(framework, output)
