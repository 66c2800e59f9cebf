"""OpenVINO's CPU plugin on the ONNX graph of our weights, in fp32."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.bench.onnx_model import build_onnx
from tvm_mobilenet.bench.peer import Peer, Predict
from tvm_mobilenet.model.architecture import ModelConfig


class OpenVino(Peer):
    name = "openvino"
    label = "OpenVINO"
    modules = ("openvino", "onnx")

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        import openvino

        core = openvino.Core()
        model = core.read_model(build_onnx(config, weights).SerializeToString(), b"")
        compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
                # On CPUs with AMX/AVX512-BF16 the default is bf16: ask for the fp32 everyone else
                # computes.
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        request = compiled.create_infer_request()
        return lambda data: request.infer([data])[0].copy()
