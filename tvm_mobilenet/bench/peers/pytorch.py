"""PyTorch (eager, inference mode) with an nn.Module that holds our weights (BN folded)."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.bench.peer import Peer, Predict
from tvm_mobilenet.model.architecture import ModelConfig, layers
from tvm_mobilenet.model.relax_builder import same_padding
from tvm_mobilenet.model.weights import fold_batchnorm


def build_torch_module(config: ModelConfig, weights: dict[str, np.ndarray]):
    """An nn.Sequential computing class probabilities from an NCHW batch."""
    import torch
    from torch import nn

    modules = []
    for layer in layers(config):
        if layer.has_batchnorm:
            weight, bias = fold_batchnorm(layer, weights)
            top, left, bottom, right = same_padding(layer)
            conv = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel,
                layer.stride,
                groups=layer.in_channels if layer.kind == "depthwise" else 1,
            )
            conv.weight.data, conv.bias.data = torch.from_numpy(weight), torch.from_numpy(bias)
            if (top, left) == (bottom, right):
                conv.padding = (top, left)
                modules += [conv, nn.ReLU()]
            else:  # TF "same" padding is asymmetric for strided layers
                modules += [nn.ZeroPad2d((left, right, top, bottom)), conv, nn.ReLU()]
        elif layer.kind == "avgpool":
            modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:  # fc
            weight, bias = fold_batchnorm(layer, weights)
            fc = nn.Linear(layer.in_channels, layer.out_channels)
            fc.weight.data, fc.bias.data = torch.from_numpy(weight), torch.from_numpy(bias)
            modules.append(fc)
    modules.append(nn.Softmax(dim=-1))
    return nn.Sequential(*modules).eval()


class PyTorch(Peer):
    name = "torch"
    label = "PyTorch"
    modules = ("torch",)

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        import torch

        torch.set_num_threads(threads)
        module = build_torch_module(config, weights)

        def predict(data: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(data)).numpy()

        return predict
