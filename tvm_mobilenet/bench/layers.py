"""`bench --profile --peers ort`: ours and ONNX Runtime layer by layer, timed in turns.

Each round runs ONNX Runtime (its own profiler times every node) and then our module (the VM
instrument of profile.py times every kernel call), each as a turn of the bench: idle until the
other's spinning workers stop, one untimed call, one timed call; so a change in machine load hits
both alike. The table gives each layer's median over the rounds. Each side is timed by its own
clock: ONNX Runtime's node times (whole microseconds) include its per-node dispatch, ours the
instrument's few microseconds. Layers are matched by position: the n-th convolution of ours
(first conv, depthwise, pointwise, in the model's order) against ONNX Runtime's n-th Conv node,
then pooling, classifier, softmax and layout changes summed by kind.

Why: the whole-model ratio says whether we are behind, not where. On a 2-core AMD EPYC (znver3,
2026-11-27, 1 thread) this table showed ours ahead on every depthwise layer and behind on the
7x7 pointwise layers and the classifier, whose weights come from memory on every call."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_mobilenet.bench.harness import settle
from tvm_mobilenet.bench.profile import kernel_calls, model_call
from tvm_mobilenet.errors import LayerMatchError

CONV_KINDS = ("conv", "depthwise", "pointwise")
# ONNX Runtime's node types (after its graph optimizations: NCHWc convolutions, reorders) by kind
ORT_KINDS = {
    "Conv": "conv",
    "FusedConv": "conv",
    "GlobalAveragePool": "pooling",
    "AveragePool": "pooling",
    "Flatten": "classifier",
    "Gemm": "classifier",
    "MatMul": "classifier",
    "FusedGemm": "classifier",
    "Softmax": "softmax",
    "ReorderInput": "layout",
    "ReorderOutput": "layout",
    "Transpose": "layout",
}


@dataclass
class Layer:
    name: str  # the model's layer (conv1, block1.dw, ...) or, for the rest, the kind
    kind: str  # conv, depthwise, pointwise, pooling, classifier, softmax, layout, other
    shape: str  # ours: the first argument's shape -> the output's ("" for a kind's sum)
    ours_us: float
    ort_us: float | None  # None: ONNX Runtime has no such step

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "kind", "shape", "ours_us", "ort_us")}


@dataclass
class LayerComparison:
    threads: int
    rounds: int
    layers: list[Layer]

    def as_dict(self) -> dict:
        return {
            "threads": self.threads,
            "rounds": self.rounds,
            "layers": [layer.as_dict() for layer in self.layers],
        }


def compare_layers(
    path: Path, config, weights: dict[str, np.ndarray], threads: int, rounds: int = 20
) -> LayerComparison:
    """Our module at `path` and ONNX Runtime on `config` with `weights`, in turns, `rounds` each."""
    ort_run, profile_file = _ort_session(config, weights, threads)
    ours_run = _our_session(path, threads)
    ours_rounds = []
    for _ in range(rounds):  # as the bench's turns: a pause, one untimed call, the timed one
        for run in (ort_run, ours_run):
            settle()  # the other system's spinning workers wind down
            run()
            timed = run()
        ours_rounds.append(timed)
    ort_nodes = _ort_node_times(profile_file())
    return LayerComparison(threads, rounds, _match(config, _median_calls(ours_rounds), ort_nodes))


def _ort_session(config, weights, threads: int):
    import onnxruntime

    from tvm_mobilenet.bench.onnx_model import INPUT_NAME, build_onnx
    from tvm_mobilenet.bench.peers.ort import session_options

    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort_profile")
    session = onnxruntime.InferenceSession(
        build_onnx(config, weights).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    data = np.random.default_rng(0).standard_normal(config.input_shape).astype(np.float32)
    return (lambda: session.run(None, {INPUT_NAME: data})), session.end_profiling


def _our_session(path: Path, threads: int):
    """A function that runs the module once and returns [(kind, shape, us)] in call order."""
    model, call = model_call(path, threads)
    timed_call = kernel_calls(model.vm, call)
    return lambda: [(kind, shape, us) for _, kind, shape, us in timed_call()]


def _median_calls(rounds: list[list]) -> list[tuple[str, str, float]]:
    """(kind, shape, median us) per call position."""
    return [
        (kind, shape, statistics.median(r[i][2] for r in rounds))
        for i, (kind, shape, _) in enumerate(rounds[0])
    ]


def _ort_node_times(profile_path: str) -> list[tuple[str, float]]:
    """(kind, median us) per node in execution order, over the timed (every second) runs."""
    events = json.loads(Path(profile_path).read_text())
    shutil.rmtree(Path(profile_path).parent, ignore_errors=True)  # our mkdtemp
    times: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.get("ts", 0)):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times.setdefault(event["name"], []).append(float(event["dur"]))
            kinds[event["name"]] = ORT_KINDS.get(event["args"].get("op_name"), "other")
    return [(kinds[name], statistics.median(t[1::2])) for name, t in times.items()]


def _match(config, ours: list[tuple[str, str, float]], ort: list[tuple[str, float]]) -> list[Layer]:
    """Convolutions one to one in the order of the model's layer table (checked against our
    kernels' output shapes), then the other kinds summed per kind."""
    from tvm_mobilenet.model.architecture import layers

    table = [layer for layer in layers(config) if layer.kind in CONV_KINDS]
    our_convs = [c for c in ours if c[0] in CONV_KINDS]
    ort_convs = [us for kind, us in ort if kind == "conv"]
    for layer, (_, shape, _) in zip(table, our_convs, strict=False):
        size, channels = layer.out_size, layer.out_channels
        expected = f"{config.batch}x{size}x{size}x{channels}"
        if shape.split(" -> ")[-1] != expected:
            raise LayerMatchError(
                f"the module's {layer.name} outputs {shape.split(' -> ')[-1]}, the model's "
                f"{expected}: pass the --alpha/--resolution/--batch the module was built with"
            )
    if not len(table) == len(our_convs) == len(ort_convs):
        raise LayerMatchError(
            f"the module runs {len(our_convs)} convolutions, ONNX Runtime {len(ort_convs)}, the "
            f"model {len(table)}: profile a module of the built-in MobileNet"
        )
    pairs = zip(table, our_convs, ort_convs, strict=True)
    result = [Layer(layer.name, kind, shape, us, peer) for layer, (kind, shape, us), peer in pairs]
    others = [c for c in ours if c[0] not in CONV_KINDS]
    for kind in dict.fromkeys([c[0] for c in others] + [k for k, _ in ort if k != "conv"]):
        mine = [c for c in others if c[0] == kind]
        theirs = [us for k, us in ort if k == kind]
        shape = mine[0][1] if len(mine) == 1 else ""
        result.append(
            Layer(kind, kind, shape, sum(c[2] for c in mine), sum(theirs) if theirs else None)
        )
    return result


def format_layers(comparison: LayerComparison) -> str:
    lines = [
        f"layer by layer against ONNX Runtime at {comparison.threads} thread(s), in turns "
        f"({comparison.rounds} calls each; median us per model call):",
        f"{'layer':11s} {'kind':10s} {'shape':36s} {'ours':>9s} {'ORT':>9s} {'ours-ORT':>9s}",
    ]
    for layer in comparison.layers:
        ort = "-" if layer.ort_us is None else f"{layer.ort_us:9.1f}"
        diff = layer.ours_us - (layer.ort_us or 0.0)
        lines.append(
            f"{layer.name:11s} {layer.kind:10s} {layer.shape[:36]:36s} {layer.ours_us:9.1f} "
            f"{ort:>9s} {diff:+9.1f}"
        )
    lines.append("by kind (ours / ORT, us): " + ", ".join(_by_kind(comparison.layers)))
    ours = sum(layer.ours_us for layer in comparison.layers)
    ort = sum(layer.ort_us or 0.0 for layer in comparison.layers)
    lines.append(f"sum: ours {ours:.0f} us, ONNX Runtime {ort:.0f} us, ratio {ours / ort:.2f}")
    return "\n".join(lines)


def _by_kind(layers: list[Layer]) -> list[str]:
    totals: dict[str, list[float]] = {}
    for layer in layers:
        entry = totals.setdefault(layer.kind, [0.0, 0.0])
        entry[0] += layer.ours_us
        entry[1] += layer.ort_us or 0.0
    return [f"{kind} {ours:.0f} / {ort:.0f}" for kind, (ours, ort) in totals.items()]
