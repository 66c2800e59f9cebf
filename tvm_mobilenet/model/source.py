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

from tvm_mobilenet.model import calibration, reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.frameworks import model_format, run_source
from tvm_mobilenet.model.importers import ImportedModel, file_sha256, load_model_file
from tvm_mobilenet.model.quantized import Int8Options, integerize
from tvm_mobilenet.model.relax_builder import build_module
from tvm_mobilenet.model.weights import get_weights

FP32_COMPARISON_INPUTS = 8  # fixed inputs on which an int8 build is compared with the fp32 model


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

    def extra_checks(self, run) -> list[str]:
        """Lines to print after the check, from `run(input) -> output` of the compiled module."""
        return []


class BuiltinMobileNet(ModelSource):
    """MobileNet v1 built from `config`, checked against the float64 numpy reference.

    With `int8`, quantized by post-training calibration (calibration.py) on the images of
    `calibration_file` (a .npy batch) or on deterministic synthetic images, made integer with those
    options, and checked against the same quantization computed in numpy integers."""

    def __init__(
        self,
        config: ModelConfig,
        weights_file: str | Path | None = None,
        seed: int = 0,
        int8: Int8Options | None = None,
        calibration_file: str | Path | None = None,
    ):
        self.config, self.weights_file, self.seed = config, weights_file, seed
        self.int8, self.calibration_file = int8, calibration_file

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def key(self) -> dict:
        if self.int8 is None:
            return self.config.key
        return {
            **self.config.key,
            "precision": "int8",
            **self.int8.key,
            "calibration": calibration.calibration_label(self.calibration_file),
        }

    @property
    def log_name(self) -> str:
        c = self.config
        name = f"mobilenet_v1-{c.alpha}-{c.resolution}-b{c.batch}"
        return name if self.int8 is None else f"{name}-{self.int8.label}"

    def describe(self) -> str:
        c = self.config
        text = f"MobileNet v1 alpha={c.alpha} resolution={c.resolution} batch={c.batch}"
        if self.int8 is None:
            return text
        hint = "" if self.calibration_file else "; pass --calibration FILE.npy for real images"
        return (
            f"{text}, int8 ({self.int8.describe()}, calibrated on "
            f"{calibration.calibration_label(self.calibration_file)}{hint})"
        )

    def input_files(self) -> dict[str, Path]:
        return {"--weights": Path(self.weights_file)} if self.weights_file else {}

    @functools.cached_property
    def _built(self) -> tuple[tvm.IRModule, dict[str, np.ndarray]]:
        return load_model(self.config, self.weights_file, self.seed)

    @functools.cached_property
    def quantized(self) -> calibration.QuantizedMobileNet:
        images = (
            calibration.load_calibration(Path(self.calibration_file), self.config)
            if self.calibration_file
            else calibration.synthetic_images(self.config.input_shape)
        )
        label = calibration.calibration_label(self.calibration_file)
        return calibration.quantize_model(self.config, self._built[1], images, label)

    def module(self) -> tvm.IRModule:
        if self.int8 is None:
            return self._built[0]
        return integerize(calibration.qdq_module(self.quantized), self.int8)[0]

    def expected(self, data: np.ndarray) -> Expected:
        if self.int8 is None:
            return Expected(
                "the float64 reference", reference.forward(self.config, self._built[1], data)
            )
        output = calibration.integer_forward(self.quantized, data, self.int8.arithmetic)
        return Expected("the same quantization in numpy integers", output)

    def extra_checks(self, run) -> list[str]:
        """int8: how far our quantization moves the model from fp32 (printed, not a pass/fail)."""
        if self.int8 is None:
            return []
        agree, errors = 0, []
        for seed in range(FP32_COMPARISON_INPUTS):
            data = reference.random_input(self.input_shape, seed=100 + seed)
            got = np.asarray(run(data), dtype=np.float64)
            fp32 = reference.forward(self.config, self._built[1], data)
            agree += int(np.array_equal(got.argmax(axis=-1), fp32.argmax(axis=-1)))
            errors.append(float(np.max(np.abs(got - fp32))))
        return [
            f"int8 vs the fp32 model (float64 reference) on {FP32_COMPARISON_INPUTS} inputs: "
            f"top-1 agreement {agree}/{FP32_COMPARISON_INPUTS}, max abs softmax error "
            f"{max(errors):.4f} (median {np.median(errors):.4f})"
        ]


class ModelFile(ModelSource):
    """A .onnx, .tflite or .pt2 file, checked against its own framework's runtime. A quantized
    TFLite or QDQ ONNX file is made integer with `int8` (default: Int8Options())."""

    def __init__(
        self,
        path: str | Path,
        input_shape: tuple[int, ...] | None = None,
        int8: Int8Options | None = None,
        trusted: bool = False,
    ):
        self.path, self.given_shape = Path(path), input_shape
        self.int8_options, self.trusted = int8, trusted
        # an unknown suffix, a missing file, a .pt2 not trusted: fail before anything else
        model_format(self.path, trusted)

    @functools.cached_property
    def imported(self) -> ImportedModel:
        return load_model_file(self.path, self.given_shape, self.int8_options, self.trusted)

    @functools.cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.imported.input_shape

    @property
    def int8(self) -> Int8Options | None:
        """The options the file was made integer with (None for a float model)."""
        return self.imported.int8

    @property
    def key(self) -> dict:
        key = {"file": self.path.name, "sha256": self.sha256, "input_shape": list(self.input_shape)}
        return key if self.int8 is None else {**key, **self.int8.key}

    @property
    def log_name(self) -> str:
        name = f"{self.path.stem}-{self.sha256[:12]}"
        return name if self.int8 is None else f"{name}-{self.int8.label}"

    def input_files(self) -> dict[str, Path]:
        return {"--model": self.path}

    def describe(self) -> str:
        m = self.imported
        precision = "" if m.int8 is None else f", int8 ({m.int8.describe()})"
        return (
            f"{self.path.name} ({m.source_format}, input '{m.input_name}' "
            f"{'x'.join(map(str, m.input_shape))} {m.layout} {m.input_dtype}{precision})"
        )

    def module(self) -> tvm.IRModule:
        return self.imported.mod

    def sample_input(self) -> np.ndarray:
        if self.imported.input_dtype == "int8":
            return reference.int8_input(self.input_shape)
        return super().sample_input()

    def expected(self, data: np.ndarray) -> Expected:
        arithmetic = None if self.int8 is None else self.int8.arithmetic
        framework, output = run_source(self.imported.source_format, self.path, data, arithmetic)
        return Expected(framework, output)
