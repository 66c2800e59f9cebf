"""ONNX Runtime (CPU execution provider) on the ONNX graph of our weights."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.bench.onnx_model import INPUT_NAME, build_onnx
from tvm_mobilenet.bench.peer import Peer, Predict
from tvm_mobilenet.model.architecture import ModelConfig


class OnnxRuntime(Peer):
    name = "ort"
    label = "ONNX Runtime"
    modules = ("onnxruntime", "onnx")

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            build_onnx(config, weights).SerializeToString(),
            session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        return lambda data: session.run(None, {INPUT_NAME: data})[0]


def session_options(threads: int):
    """The bench's ONNX Runtime settings: `threads` intra-op threads, every graph optimization."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options
