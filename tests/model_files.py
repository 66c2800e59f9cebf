"""Real model files made by the frameworks themselves: a PyTorch MobileNet v1 exported to ONNX and
.pt2, and a MobileNet-like Keras model converted to TFLite. Each maker skips the test if its
framework is missing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

ALPHA, RESOLUTION, CLASSES = 0.25, 32, 100
# Channels of MobileNet v1's depthwise-separable blocks at alpha=1, and their strides.
BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
]


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
            for cout, stride in BLOCKS:
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
    for filters, stride in BLOCKS[:5]:
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
