"""MobileNet v1 as data (Howard et al. 2017, Table 1), with width multiplier alpha and resolution.

Everything here is plain Python: shapes, mult-adds and parameter counts, no TVM."""

from __future__ import annotations

from dataclasses import dataclass

from tvm_mobilenet.errors import ModelSpecError

NUM_CLASSES = 1000

# (output channels at alpha=1, stride) of the 13 depthwise-separable blocks, Table 1.
# The paper lists the 13th depthwise conv as "s2" on a 7x7 input, a known typo: its output
# is 7x7, and the paper's 569M mult-adds only add up with stride 1.
SEPARABLE_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
STEM_CHANNELS = 32


@dataclass(frozen=True)
class ModelConfig:
    """Which MobileNet v1: width multiplier, input resolution and batch size."""

    alpha: float = 1.0
    resolution: int = 224
    batch: int = 1

    def __post_init__(self):
        if not 0 < self.alpha <= 1:
            raise ModelSpecError(
                f"width multiplier alpha={self.alpha} is out of range: use 0 < alpha <= 1 "
                "(the paper uses 1.0, 0.75, 0.5, 0.25)"
            )
        if self.resolution < 32 or self.resolution % 32:
            raise ModelSpecError(
                f"resolution {self.resolution} is not a multiple of 32 that is >= 32: "
                "use e.g. 224, 192, 160 or 128"
            )
        if self.batch < 1:
            raise ModelSpecError(f"batch size {self.batch} must be >= 1")

    def channels(self, base: int) -> int:
        """Channels of a layer with `base` channels at alpha=1 (the paper's int(alpha * c))."""
        return max(1, int(base * self.alpha))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.resolution, self.resolution)

    @property
    def key(self) -> dict:
        """What identifies the model's tuning workloads (weights do not matter to tuning)."""
        return {
            "name": "mobilenet_v1",
            "alpha": self.alpha,
            "resolution": self.resolution,
            "batch": self.batch,
        }


@dataclass(frozen=True)
class Layer:
    """One layer of the network: a convolution, the pooling, or the classifier."""

    name: str
    kind: str  # "conv", "depthwise", "pointwise", "avgpool", "fc"
    in_channels: int
    out_channels: int
    in_size: int  # spatial height = width of the input
    kernel: int = 1
    stride: int = 1

    @property
    def out_size(self) -> int:
        if self.kind == "avgpool":
            return 1
        if self.kind == "fc":
            return 1
        return (self.in_size + self.stride - 1) // self.stride

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """OIHW for convolutions (depthwise: O, 1, kh, kw), (out, in) for the classifier."""
        if self.kind == "depthwise":
            return (self.out_channels, 1, self.kernel, self.kernel)
        if self.kind in ("conv", "pointwise"):
            return (self.out_channels, self.in_channels, self.kernel, self.kernel)
        if self.kind == "fc":
            return (self.out_channels, self.in_channels)
        return None

    @property
    def has_batchnorm(self) -> bool:
        return self.kind in ("conv", "depthwise", "pointwise")

    def macs(self, batch: int = 1) -> int:
        """Mult-adds, counted as in the paper (BN, ReLU, pooling and biases are free)."""
        out_pixels = self.out_size * self.out_size
        if self.kind == "depthwise":
            return batch * out_pixels * self.out_channels * self.kernel * self.kernel
        if self.kind in ("conv", "pointwise"):
            return batch * out_pixels * self.out_channels * self.in_channels * self.kernel**2
        if self.kind == "fc":
            return batch * self.in_channels * self.out_channels
        return 0

    def params(self) -> int:
        """Trainable parameters without BatchNorm (the paper's count)."""
        shape = self.weight_shape
        if shape is None:
            return 0
        count = 1
        for dim in shape:
            count *= dim
        if self.kind == "fc":
            count += self.out_channels  # the classifier's bias
        return count


def layers(config: ModelConfig) -> list[Layer]:
    """The layers of MobileNet v1 for `config`, in order (Table 1)."""
    size = config.resolution
    channels = config.channels(STEM_CHANNELS)
    result = [Layer("conv1", "conv", 3, channels, size, kernel=3, stride=2)]
    size = result[-1].out_size
    for index, (base_out, stride) in enumerate(SEPARABLE_BLOCKS, start=1):
        depthwise = Layer(f"block{index}.dw", "depthwise", channels, channels, size, 3, stride)
        size = depthwise.out_size
        out_channels = config.channels(base_out)
        pointwise = Layer(f"block{index}.pw", "pointwise", channels, out_channels, size)
        result += [depthwise, pointwise]
        channels = out_channels
    result.append(Layer("avgpool", "avgpool", channels, channels, size, kernel=size))
    result.append(Layer("fc", "fc", channels, NUM_CLASSES, 1))
    return result


def totals(config: ModelConfig) -> tuple[int, int]:
    """(mult-adds, parameters) of the whole network at batch 1."""
    all_layers = layers(config)
    return sum(layer.macs() for layer in all_layers), sum(layer.params() for layer in all_layers)


def layer_table(config: ModelConfig) -> dict:
    """The layer table as plain data: per layer kind, input shape, mult-adds and params; totals."""
    rows = []
    for layer in layers(config):
        rows.append(
            {
                "name": layer.name,
                "kind": layer.kind,
                "input_shape": [config.batch, layer.in_channels, layer.in_size, layer.in_size],
                "stride": layer.stride,
                "macs": layer.macs(config.batch),
                "params": layer.params(),
            }
        )
    return {
        "model": config.key,
        "layers": rows,
        "macs": sum(row["macs"] for row in rows),
        "params": sum(row["params"] for row in rows),
    }
