"""A full-integer int8 TFLite MobileNet v1 of our weights, quantized by TensorFlow's converter.

The graph is our MobileNet v1 (architecture.layers, TF "same" padding, BatchNorm folded into each
convolution's bias) as a Keras model, converted by TFLiteConverter with a representative dataset,
TFLITE_BUILTINS_INT8 only and int8 input and output: int8 activations per tensor, int8 weights per
output channel, int32 biases. That is what people deploy, and the file every system of
`bench --precision int8` runs (ours imports it, TFLite runs it, ONNX Runtime runs its QDQ twin).
The classifier is AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX. Needs TensorFlow
(`pip install '.[frameworks]'`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tvm_mobilenet.model.architecture import ModelConfig, layers
from tvm_mobilenet.model.calibration import synthetic_images
from tvm_mobilenet.model.weights import fold_batchnorm

ACTIVATIONS = ("relu6", "relu")


def keras_mobilenet(config: ModelConfig, weights: dict[str, np.ndarray], activation: str = "relu6"):
    """The network as a Keras model on NHWC float input, holding `weights`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    def act():
        return keras.layers.ReLU(max_value=6.0 if activation == "relu6" else None)

    x = inputs = keras.Input((config.resolution, config.resolution, 3), batch_size=config.batch)
    assigned = []
    for layer in layers(config):
        if layer.kind == "avgpool":
            x = keras.layers.AveragePooling2D(layer.in_size)(x)
            x = keras.layers.Reshape((layer.in_channels,))(x)
            continue
        weight, bias = fold_batchnorm(layer, weights)
        if layer.kind == "fc":
            keras_layer = keras.layers.Dense(layer.out_channels)
            x, kernel = keras.layers.Softmax()(keras_layer(x)), weight.T
        elif layer.kind == "depthwise":
            keras_layer = keras.layers.DepthwiseConv2D(layer.kernel, layer.stride, padding="same")
            x, kernel = act()(keras_layer(x)), weight.transpose(2, 3, 0, 1)  # (C,1,kh,kw) -> HWC1
        else:
            keras_layer = keras.layers.Conv2D(
                layer.out_channels, layer.kernel, layer.stride, padding="same"
            )
            x, kernel = act()(keras_layer(x)), weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        assigned.append((keras_layer, [kernel, bias]))
    model = keras.Model(inputs, x)
    for keras_layer, values in assigned:
        keras_layer.set_weights([v.astype(np.float32) for v in values])
    return model


def convert_int8(model, calibration_nhwc: np.ndarray) -> bytes:
    """Full-integer conversion: int8 in, int8 out, int8 builtins only."""
    import tensorflow as tf

    def representative():
        for image in calibration_nhwc:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def write_int8_tflite(
    config: ModelConfig,
    weights: dict[str, np.ndarray],
    output: Path,
    activation: str = "relu6",
) -> Path:
    """Write the int8 .tflite of `config` with `weights`, calibrated on our deterministic synthetic
    images (model/calibration.py); returns `output`."""
    images = synthetic_images(config.input_shape).transpose(0, 2, 3, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(convert_int8(keras_mobilenet(config, weights, activation), images))
    return output
