"""OpenVINO's CPU plugin on the ONNX graph of our weights, in fp32."""

from __future__ import annotations

import numpy as np

from ..architecture import ModelConfig
from .onnx_model import build_onnx
from .peer import Peer, Predict


class OpenVino(Peer):
    name = "openvino"
    label = "OpenVINO"
    modules = ("openvino", "onnx")

    def version(self) -> str:
        import openvino  # pylint: disable=import-outside-toplevel

        return openvino.__version__.split("-")[0]

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        import openvino  # pylint: disable=import-outside-toplevel

        core = openvino.Core()
        model = core.read_model(build_onnx(config, weights).SerializeToString(), b"")
        compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            # On CPUs with AMX/AVX512-BF16 the default is bf16: ask for the fp32 everyone else computes.
            "INFERENCE_PRECISION_HINT": "f32",
        })
        request = compiled.create_infer_request()
        return lambda data: request.infer([data])[0].copy()
