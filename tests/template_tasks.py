"""The template tasks of MobileNet models, for parametrized tests.

Ids come from the architecture alone (cheap at collection); the tasks themselves are extracted with
TVM once per device and model, when the first test asks for them.
"""

from __future__ import annotations

import functools

from tvm_mobilenet.model.architecture import ModelConfig, layers

# 1.0/224 has every channel count and spatial size of the paper; 0.25/64 has 8-channel layers,
# narrower than one AVX-512 register, and 2x2 maps.
CONFIGS = (ModelConfig(1.0, 224), ModelConfig(0.25, 64))
KIND_OF_LAYER = {"conv": "conv", "depthwise": "depthwise", "pointwise": "pointwise"}


def task_shape(config: ModelConfig, layer) -> str:
    """A layer's task shape as tasks.extract names it (NHWC input, kernel, stride, outputs)."""
    size, k = layer.in_size, layer.kernel
    return (
        f"{config.batch}x{size}x{size}x{layer.in_channels} k{k}x{k} s{layer.stride} "
        f"->{layer.out_channels}"
    )


def task_id(kind: str, shape: str) -> str:
    return f"{kind}-{shape.replace(' ', '')}"


def task_ids(config: ModelConfig, shapes: set[str] | None = None) -> list[tuple[ModelConfig, str]]:
    """(config, id) of each unique convolution task of `config` (only `shapes`, if given)."""
    ids = []
    for layer in layers(config):
        if layer.kind not in KIND_OF_LAYER:
            continue
        shape = task_shape(config, layer)
        item = (config, task_id(KIND_OF_LAYER[layer.kind], shape))
        if item not in ids and (shapes is None or shape in shapes):
            ids.append(item)
    return ids


def all_task_ids(configs=CONFIGS) -> list[tuple[ModelConfig, str]]:
    return [item for config in configs for item in task_ids(config)]


def param_id(item) -> str:
    config, ident = item
    return f"{config.alpha}-{config.resolution}-{ident}"


@functools.cache
def _tasks(family: str, device: str, config: ModelConfig) -> dict:
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.source import load_model
    from tvm_mobilenet.schedules.templates import template_kind
    from tvm_mobilenet.tasks.extract import extract_tasks

    mod, _ = load_model(config)
    extracted = extract_tasks(mod, load_device(family, device).target)
    return {task_id(t.kind, t.shape): t for t in extracted if template_kind(t.mod)}


def template_task(device, item):
    """The extracted task of `item` = (config, id) for `device` (a DeviceSpec)."""
    config, ident = item
    return _tasks(device.family, device.name, config)[ident]


def extracted_ids(device, config: ModelConfig) -> set[str]:
    return set(_tasks(device.family, device.name, config))
