"""What every benchmarked system provides: a name, whether it can run here, and a prepared
predictor.

A peer builds the same MobileNet v1 (same `ModelConfig`, same weights) in its own framework, so the
benchmark compares runtimes, not models.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from tvm_mobilenet.model.architecture import ModelConfig

# One call: an NCHW float32 batch in, (batch, 1000) class probabilities out.
Predict = Callable[[np.ndarray], np.ndarray]

INSTALL_HINT = "pip install '.[bench]'"


def missing_modules(modules: tuple[str, ...]) -> str | None:
    """None if every module imports, else why not (a note naming the install command)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"not installed ({err}); {INSTALL_HINT}"
    return None


def interpreter_predictor(interpreter) -> Predict:
    """A TFLite interpreter (LiteRT's or TensorFlow's) of a one-input, one-output model as a
    predictor; it allocates the interpreter's tensors."""
    interpreter.allocate_tensors()
    (data_index,) = [d["index"] for d in interpreter.get_input_details()]
    (output_index,) = [d["index"] for d in interpreter.get_output_details()]

    def predict(data: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(data_index, data)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return predict


class Peer(ABC):
    """A system the benchmark runs: ONNX Runtime, OpenVINO, LiteRT, PyTorch, or ours."""

    name: str  # short name used by --peers and in the table
    modules: tuple[str, ...] = ()  # Python packages the peer needs

    def available(self) -> str | None:
        """None if the peer can run here, else why not (shown as a note, never fatal)."""
        return missing_modules(self.modules)

    @abstractmethod
    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        """Build the model with `weights` to run on `threads` threads; return its predictor."""

    def version(self) -> str:
        """The version of the peer's framework, for the report."""
        module = importlib.import_module(self.modules[0])
        return str(getattr(module, "__version__", "?"))
