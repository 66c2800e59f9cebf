"""MobileNet v1 as an ONNX graph, written with onnx's helper API from our weights (BN folded)."""

from __future__ import annotations

import numpy as np

from tvm_mobilenet.model.architecture import ModelConfig, layers
from tvm_mobilenet.model.relax_builder import same_padding
from tvm_mobilenet.model.weights import fold_batchnorm

OPSET = 17
IR_VERSION = 8  # what every current ONNX Runtime and OpenVINO reads
INPUT_NAME = "data"
OUTPUT_NAME = "probabilities"


def build_onnx(config: ModelConfig, weights: dict[str, np.ndarray]):
    """A checked onnx.ModelProto: NCHW input `data`, softmax output `probabilities`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    x = INPUT_NAME
    for layer in layers(config):
        if layer.has_batchnorm:
            weight, bias = fold_batchnorm(layer, weights)
            initializers += [
                numpy_helper.from_array(weight, f"{layer.name}.w"),
                numpy_helper.from_array(bias, f"{layer.name}.b"),
            ]
            top, left, bottom, right = same_padding(layer)
            nodes.append(
                helper.make_node(
                    "Conv",
                    [x, f"{layer.name}.w", f"{layer.name}.b"],
                    [f"{layer.name}.conv"],
                    kernel_shape=[layer.kernel] * 2,
                    strides=[layer.stride] * 2,
                    pads=[top, left, bottom, right],
                    group=layer.in_channels if layer.kind == "depthwise" else 1,
                )
            )
            nodes.append(helper.make_node("Relu", [f"{layer.name}.conv"], [layer.name]))
        elif layer.kind == "avgpool":
            nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
            nodes.append(helper.make_node("Flatten", ["pooled"], [layer.name], axis=1))
        elif layer.kind == "fc":
            weight, bias = fold_batchnorm(layer, weights)
            initializers += [
                numpy_helper.from_array(weight, "fc.w"),
                numpy_helper.from_array(bias, "fc.b"),
            ]
            nodes.append(helper.make_node("Gemm", [x, "fc.w", "fc.b"], [layer.name], transB=1))
        x = layer.name
    nodes.append(helper.make_node("Softmax", [x], [OUTPUT_NAME], axis=-1))
    graph = helper.make_graph(
        nodes,
        "mobilenet_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(config.input_shape))],
        [
            helper.make_tensor_value_info(
                OUTPUT_NAME, TensorProto.FLOAT, [config.batch, layers(config)[-1].out_channels]
            )
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="tvm_mobilenet",
    )
    onnx.checker.check_model(model)
    return model
