"""The in-model check: verdicts from recorded times, the file a tune writes, compile's use."""

import json
import shutil

import tvm

from tvm_mobilenet.compile.build import _apply_records
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet, load_model
from tvm_mobilenet.tasks.extract import fuse
from tvm_mobilenet.tune.in_model import (
    IN_MODEL_FILE,
    MARGIN,
    function_hashes,
    untuned_functions,
    verdicts,
)
from tvm_mobilenet.tune.log import open_snapshot

from .conftest import LOG_DEVICE, TINY_MODEL

# Recorded by `tune --trials 0` on a copy of the shipped znver4 log (2-core AMD EPYC, 2026-11-27,
# 2 threads): each kernel's in-model µs per model call, the median of three rounds, with the
# log's records and untuned.
RECORDED = {
    "fused_conv2d18_add9_relu9": ("pointwise 1x7x7x1024 k1x1 s1 ->1024", 606.2, 559.9),
    "fused_conv2d14_add7_relu7": ("pointwise 1x14x14x512 k1x1 s1 ->512", 2549.0, 2550.2),
    "fused_conv2d13_add7_relu7": ("depthwise 1x14x14x512 k3x3 s1 ->512", 165.6, 159.3),
    "fused_conv2d3_add2_relu2": ("depthwise 1x112x112x64 k3x3 s2 ->64", 40.6, 89.7),
    "fused_conv2d11_add6_relu6": ("depthwise 1x28x28x256 k3x3 s2 ->256", 14.4, 14.0),
}


def test_untuned_wins_beyond_the_margin():
    tuned = {name: [us] for name, (_, us, _) in RECORDED.items()}
    untuned = {name: [us] for name, (_, _, us) in RECORDED.items()}
    shapes = {name: shape for name, (shape, _, _) in RECORDED.items()}
    hashes = {name: str(index) for index, name in enumerate(RECORDED)}
    found = {v.name: v for v in verdicts(tuned, untuned, hashes, shapes)}
    # 7.6 % and 3.8 % faster untuned; level; 2.2x slower; 2.8 % faster: within the margin
    wins = {name for name, v in found.items() if v.untuned_wins}
    assert wins == {"fused_conv2d18_add9_relu9", "fused_conv2d13_add7_relu7"}
    assert MARGIN > 1 - 14.0 / 14.4
    assert set(found) == set(RECORDED)
    assert not verdicts(tuned, untuned, hashes, {})  # kernels without a record get no verdict


def test_a_verdict_takes_the_median_of_the_rounds():
    (verdict,) = verdicts({"k": [3.0, 1.0, 2.0]}, {"k": [5.0, 9.0, 4.0]}, {"k": "1"}, {"k": "x"})
    assert (verdict.tuned_us, verdict.untuned_us, verdict.untuned_wins) == (2.0, 5.0, False)


def test_tune_writes_a_verdict_per_tuned_kernel(tiny_log):
    data = json.loads((tiny_log / IN_MODEL_FILE).read_text())
    kernels = data["kernels"]
    assert data["threads"] >= 1 and data["margin"] == MARGIN
    assert len(kernels) == 3  # the tiny log's three depthwise tasks
    assert all(k["shape"].startswith("depthwise") for k in kernels)
    assert all(k["tuned_us"] > 0 and k["untuned_us"] > 0 for k in kernels)
    device = load_device(*LOG_DEVICE)
    mod, _ = load_model(ModelConfig(**TINY_MODEL))
    with device.target:
        hashes = function_hashes(fuse(mod, device.target))
    assert all(hashes[k["name"]] == k["function_hash"] for k in kernels)


def test_compile_gives_the_marked_functions_their_untuned_schedule(tiny_log, tmp_path):
    log_dir = tmp_path / "log"
    shutil.copytree(tiny_log, log_dir)
    data = json.loads((log_dir / IN_MODEL_FILE).read_text())
    marked = data["kernels"][0]
    for kernel in data["kernels"]:
        kernel["untuned_wins"] = kernel is marked
    (log_dir / IN_MODEL_FILE).write_text(json.dumps(data))
    assert untuned_functions(log_dir) == {marked["function_hash"]}

    device = load_device(*LOG_DEVICE)
    mod, _ = load_model(ModelConfig(**TINY_MODEL))
    log = open_snapshot(log_dir)
    try:
        with device.target, tvm.transform.PassContext(opt_level=3), log.database:
            fused = fuse(mod, device.target)
            applied = _apply_records(fused, log, device.schedule_family)
            stock = _apply_records(fused, log, None)  # no templates: every record applies
    finally:
        log.close()
    tuned = {k["name"] for k in data["kernels"]}

    def scheduled(module):
        return {
            gv.name_hint
            for gv, func in module.functions.items()
            if isinstance(func, tvm.tirx.PrimFunc) and func.attrs.get("tirx.is_scheduled")
        }

    assert scheduled(stock) == tuned
    assert scheduled(applied) == tuned - {marked["name"]}
    assert applied[marked["name"]].same_as(fused[marked["name"]])  # left for the templates


def test_a_check_again_builds_with_every_record(tiny_log, tmp_path, monkeypatch):
    """`tune --trials 0` on a checked log: the build "with the records" must not leave out the
    kernels the last check gave their untuned schedule (it would compare untuned with untuned)."""
    import tvm_mobilenet.compile.build as build_module
    from tvm_mobilenet.tasks.extract import extract_tasks
    from tvm_mobilenet.tune.in_model import check_in_model

    log_dir = tmp_path / "log"
    shutil.copytree(tiny_log, log_dir)
    data = json.loads((log_dir / IN_MODEL_FILE).read_text())
    for kernel in data["kernels"]:
        kernel["untuned_wins"] = True
    (log_dir / IN_MODEL_FILE).write_text(json.dumps(data))
    left_out = []
    real_build = build_module.build

    def build(mod, target, log, family, strassen=True):
        if log is not None:
            left_out.append(untuned_functions(log.path))
        return real_build(mod, target, log, family, strassen)

    monkeypatch.setattr(build_module, "build", build)
    device = load_device(*LOG_DEVICE)
    source = BuiltinMobileNet(ModelConfig(**TINY_MODEL))
    mod = source.module()
    log = open_snapshot(log_dir)
    try:
        tasks = extract_tasks(mod, device.target)
        found = check_in_model(
            mod, tasks, log, device.target, "x86", source.input_shape, print_fn=lambda _: None
        )
    finally:
        log.close()
    assert left_out == [set()]
    assert len(found) == 3 and json.loads((log_dir / IN_MODEL_FILE).read_text())["kernels"]
