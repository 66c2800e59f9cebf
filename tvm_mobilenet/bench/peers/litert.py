"""TFLite through LiteRT (ai-edge-litert) with its default XNNPACK delegate, on a .tflite of our
weights."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.bench.peer import Peer, Predict, interpreter_predictor
from tvm_mobilenet.bench.tflite_model import build_tflite
from tvm_mobilenet.model.architecture import ModelConfig


class LiteRT(Peer):
    name = "tflite"
    label = "TFLite/XNNPACK"
    modules = ("ai_edge_litert", "tflite", "flatbuffers")

    def version(self) -> str:
        from importlib.metadata import version

        return version("ai-edge-litert")

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=build_tflite(config, weights), num_threads=threads)
        return interpreter_predictor(interpreter)
