"""Real model files made by the frameworks themselves: a PyTorch MobileNet v1 exported to ONNX and
.pt2, a MobileNet-like Keras model and Keras's own MobileNet v1, V2 and V3Small converted to TFLite,
and small ONNX graphs written with onnx.helper. Each maker skips the test if its framework is
missing.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from tvm_mobilenet.model.architecture import SEPARABLE_BLOCKS

ALPHA, RESOLUTION, CLASSES = 0.25, 32, 100


def require(module: str):
    return pytest.importorskip(
        module, reason=f"{module} is not installed (pip install '.[frameworks]')"
    )


def torch_mobilenet(extra=None):
    """MobileNet v1 (alpha 0.25) as an nn.Module in eval mode, BatchNorm statistics randomised,
    ending in softmax.

    `extra`, a module, is applied after the first convolution (to put an unsupported operator in the
    graph).
    """
    torch = require("torch")
    nn = torch.nn

    def conv_bn(cin, cout, stride, groups=1, kernel=3):
        return [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        ]

    class MobileNetV1(nn.Module):
        def __init__(self):
            super().__init__()
            width = lambda c: max(int(c * ALPHA), 8)  # noqa: E731
            layers = conv_bn(3, width(32), 2) + ([extra] if extra is not None else [])
            cin = width(32)
            for cout, stride in SEPARABLE_BLOCKS:
                layers += conv_bn(cin, cin, stride, groups=cin) + conv_bn(
                    cin, width(cout), 1, kernel=1
                )
                cin = width(cout)
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(cin, CLASSES)

        def forward(self, x):
            return torch.softmax(self.classifier(self.features(x).mean(dim=(2, 3))), dim=-1)

    torch.manual_seed(0)
    model = MobileNetV1().eval()
    for (
        module
    ) in model.modules():  # trained-looking statistics, so folding BatchNorm is really tested
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.classifier.weight.data.mul_(20.0)  # a peaked softmax, so matching it means something
    return model


def example_input(shape=(1, 3, RESOLUTION, RESOLUTION)):
    torch = require("torch")
    return torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))


def export_onnx(model, path: Path, dynamic_batch: bool = False) -> Path:
    torch = require("torch")
    require("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example_input(),),
            str(path),
            input_names=["image"],
            output_names=["probs"],
            opset_version=13,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}} if dynamic_batch else None,
        )
    return path


def export_pt2(model, path: Path) -> Path:
    torch = require("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model, (example_input(),)), str(path))
    return path


def keras_tflite(path: Path, extra=None) -> Path:
    """A MobileNet-like Keras model (NHWC, depthwise-separable blocks, ReLU6) converted by
    TensorFlow to TFLite.

    `extra(probs)`, a TensorFlow function, is applied to the output (to put an unsupported operator
    in the graph; TensorFlow ops without a TFLite builtin become custom operators).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = require("tensorflow")
    keras, layers = tf.keras, tf.keras.layers
    keras.utils.set_random_seed(0)

    def conv_bn(x, filters, stride, depthwise=False, kernel=3):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False)(x)
        else:
            x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
        norm = layers.BatchNormalization()
        x = norm(x)
        channels = x.shape[-1]
        rng = np.random.default_rng(channels)
        norm.set_weights(
            [
                rng.uniform(0.5, 1.5, channels),
                rng.uniform(-0.2, 0.2, channels),
                rng.uniform(-0.2, 0.2, channels),
                rng.uniform(0.5, 2.0, channels),
            ]
        )
        return layers.ReLU(6.0)(x)

    image = keras.Input((RESOLUTION, RESOLUTION, 3), batch_size=1, name="image")
    x = conv_bn(image, 8, 2)
    for filters, stride in SEPARABLE_BLOCKS[:5]:
        x = conv_bn(x, None, stride, depthwise=True)
        x = conv_bn(x, max(int(filters * ALPHA), 8), 1, kernel=1)
    x = layers.GlobalAveragePooling2D()(x)
    probs = layers.Dense(
        CLASSES,
        activation="softmax",
        kernel_initializer=keras.initializers.RandomNormal(stddev=2.0),
    )(x)
    model = keras.Model(image, probs)
    if extra is None:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        with_extra = tf.function(
            lambda x: extra(model(x)),
            input_signature=[tf.TensorSpec((1, RESOLUTION, RESOLUTION, 3), tf.float32)],
        )
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [with_extra.get_concrete_function()], model
        )
        converter.allow_custom_ops = True
    path.write_bytes(converter.convert())
    return path


# Keras's own MobileNets, small: alpha 0.25 at 96x96 (the smallest size Keras builds all three at).
KERAS_FAMILIES = ("v1", "v2", "v3small")
KERAS_ALPHA, KERAS_RESOLUTION = 0.25, 96
# The classifier's kernel is scaled so that the softmax is peaked on random images without being
# saturated (V3's head is flatter).
KERAS_SHARPEN = {"v1": 10.0, "v2": 10.0, "v3small": 20.0}


def keras_application(family: str):
    """Keras's MobileNet / MobileNetV2 / MobileNetV3Small with random weights whose output depends
    on the input: with Keras's initial BatchNorm statistics (mean 0, variance 1) the activations
    of a random network fade through the layers and the softmax is the same for every image, which
    a module ignoring its input would match. So BatchNorm gets a random scale and shift and
    statistics measured on random images (one training-mode pass, momentum 0), and the classifier
    is sharpened."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = require("tensorflow")
    apps = tf.keras.applications
    tf.keras.utils.set_random_seed(0)
    shape = (KERAS_RESOLUTION, KERAS_RESOLUTION, 3)
    common = {"input_shape": shape, "alpha": KERAS_ALPHA, "weights": None, "classes": CLASSES}
    makers = {
        "v1": lambda: apps.MobileNet(**common),
        "v2": lambda: apps.MobileNetV2(**common),
        "v3small": lambda: apps.MobileNetV3Small(**common, include_preprocessing=False),
    }
    model = makers[family]()
    rng = np.random.default_rng(0)
    batch_norm = tf.keras.layers.BatchNormalization
    norms = [layer for layer in model.layers if isinstance(layer, batch_norm)]
    for layer in norms:
        channels = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
        layer.beta.assign(rng.uniform(-0.2, 0.2, channels).astype("float32"))
        layer.momentum = 0.0
    model(rng.uniform(-1, 1, (8, *shape)).astype("float32"), training=True)
    with_kernel = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]
    classifier = with_kernel[-1]
    kernel, *rest = classifier.get_weights()
    classifier.set_weights([kernel * KERAS_SHARPEN[family], *rest])
    return model


def keras_application_tflite(family: str, path: Path) -> Path:
    """`keras_application(family)` converted the usual way (`TFLiteConverter.from_keras_model`):
    a dynamic batch, and for v1 and V3 a reshape whose target is computed from the tensor's shape
    (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE)."""
    tf = require("tensorflow")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_application(family))
    with contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ...", every variable
        path.write_bytes(converter.convert())
    return path


def onnx_pad_after_conv(path: Path) -> Path:
    """Conv -> ReLU -> Pad (NHWC, bottom and right, between transposes) -> stride-2 depthwise Conv
    -> pool -> Gemm -> Softmax, written with onnx.helper: what tf2onnx makes of Keras's
    ZeroPadding2D. TVM calls a pad at the end only elementwise, so FuseOps would make it the first
    convolution's epilogue."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.uniform(-1, 1, (16, 3, 3, 3)),
        "b1": rng.uniform(-1, 1, 16),
        "w2": rng.uniform(-1, 1, (16, 1, 3, 3)),
        "b2": rng.uniform(-1, 1, 16),
        "fc": rng.uniform(-2, 2, (CLASSES, 16)),
        "fcb": rng.uniform(-1, 1, CLASSES),
    }
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    pads = np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64)  # NHWC: one row below, one column right
    initializers.append(numpy_helper.from_array(pads, "pads"))
    node = helper.make_node
    nodes = [
        node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"]),
        node("Transpose", ["r1"], ["t1"], perm=[0, 2, 3, 1]),
        node("Pad", ["t1", "pads"], ["p1"]),
        node("Transpose", ["p1"], ["t2"], perm=[0, 3, 1, 2]),
        node("Conv", ["t2", "w2", "b2"], ["c2"], strides=[2, 2], group=16),
        node("Relu", ["c2"], ["r2"]),
        node("GlobalAveragePool", ["r2"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
        node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pad_after_conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, RESOLUTION, RESOLUTION])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnx_computed_pads(path: Path) -> Path:
    """A Pad whose pads are computed in the graph (a Concat): TVM's ONNX frontend refuses it."""
    onnx = require("onnx")
    from onnx import TensorProto, helper

    half = helper.make_tensor("half", TensorProto.INT64, [4], [0, 0, 1, 1])
    nodes = [
        helper.make_node("Constant", [], ["p0"], value=half),
        helper.make_node("Concat", ["p0", "p0"], ["pads"], axis=0),
        helper.make_node("Pad", ["image", "pads"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "computed_pads",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path
