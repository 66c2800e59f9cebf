"""Keras's own MobileNet v1, V2 and V3Small, converted to TFLite with a dynamic batch (the usual
way): imported with --input-shape (shape computations folded), every convolution labelled and
scheduled by the templates (5x5 depthwise, hard-swish, squeeze-and-excite, residual adds), compiled
for x86 and checked against the TFLite interpreter; a V3 depthwise task tunes. Import failures
are one line; an explicit pad after a convolution stays out of its epilogue."""

import numpy as np
import pytest
import tvm
from tvm import s_tir

from tvm_mobilenet.compile.api import CompileArgs, compile_model
from tvm_mobilenet.errors import ModelImportError
from tvm_mobilenet.model import tflite_shapes
from tvm_mobilenet.model.importers import load_model_file
from tvm_mobilenet.model.reference import as_probabilities
from tvm_mobilenet.model.source import ModelFile
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import open_log

from . import model_files
from .conftest import tune_on

SIZE = model_files.KERAS_RESOLUTION
SHAPE = (1, SIZE, SIZE, 3)
TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def keras_file(tmp_path_factory):
    """Each family's .tflite, made by TensorFlow once per session (~20-40 s each)."""
    cache = {}

    def get(family: str):
        if family not in cache:
            path = tmp_path_factory.mktemp("keras") / f"mobilenet_{family}.tflite"
            cache[family] = model_files.keras_application_tflite(family, path)
        return cache[family]

    return get


def scheduled_vs_unscheduled(task, target) -> float:
    """Max abs difference between the template's schedule (heuristic knobs) and TVM's unscheduled
    build of `task`, on random inputs. The output starts as NaN, so an element left unwritten
    shows."""
    rng = np.random.default_rng(0)
    shapes = [[int(d) for d in p.ty.shape] for p in task.mod["main"].params]
    arrays = [rng.uniform(-1, 1, shape).astype("float32") for shape in shapes]
    arrays[-1][:] = np.nan
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", target, tuning=False)
    outputs = []
    for mod in (task.mod, sch.mod):
        args = [tvm.runtime.tensor(a) for a in arrays]
        tvm.compile(mod, target=target)["main"](*args)
        outputs.append(args[-1].numpy())
    difference = np.abs(outputs[1] - outputs[0])
    return float(difference.max()) if np.isfinite(difference).all() else float("inf")


@pytest.mark.parametrize("family", model_files.KERAS_FAMILIES)
def test_dynamic_batch_imports_with_input_shape(family, keras_file):
    path = keras_file(family)
    with pytest.raises(ModelImportError, match=r"dynamic shape \[\?, 96, 96, 3\]"):
        load_model_file(path)
    for batch in (1, 2):
        main = load_model_file(path, (batch, SIZE, SIZE, 3)).mod["main"]
        assert [int(d) for d in main.params[0].ty.shape] == [batch, SIZE, SIZE, 3]
        assert [int(d) for d in main.ret_ty.shape] == [batch, model_files.CLASSES]


@pytest.mark.parametrize("family", model_files.KERAS_FAMILIES)
def test_every_convolution_is_labelled_and_scheduled(family, keras_file, host_device):
    tasks = extract_tasks(load_model_file(keras_file(family), SHAPE).mod, host_device.target)
    convs = [task for task in tasks if "conv2d" in task.name]
    assert {task.kind for task in convs} == {"depthwise", "pointwise", "conv"}
    kernels = {task.shape.split()[1] for task in convs if task.kind == "depthwise"}
    assert kernels == ({"k3x3", "k5x5"} if family == "v3small" else {"k3x3"})
    for task in convs:  # residual adds, hard-swish and SE's gate multiply are epilogues
        assert template_kind(task.mod), task.name
        error = scheduled_vs_unscheduled(task, host_device.target)
        assert error < TOLERANCE, (task.name, task.shape, error)


@pytest.mark.parametrize("family", model_files.KERAS_FAMILIES)
def test_compile_matches_the_tflite_interpreter(family, keras_file, host_device, tmp_path):
    source = ModelFile(keras_file(family), SHAPE)
    report = compile_model(
        CompileArgs(source, host_device, tmp_path / f"{family}.so", log_dir=None),
        print_fn=lambda _: None,
    )
    assert report.checked_against.startswith("the TFLite interpreter"), report.checked_against
    assert report.max_abs_error <= TOLERANCE
    assert (tmp_path / f"{family}.so").exists()
    # The check means something: the softmax is peaked and depends on the input.
    first = as_probabilities(source.expected(source.sample_input()).output)
    second = as_probabilities(source.expected(-source.sample_input()).output)
    assert first.max() > 5 / model_files.CLASSES
    assert np.abs(first - second).max() > 0.05


@pytest.mark.slow
def test_tune_a_5x5_depthwise_task_of_v3small(keras_file, host_device, tmp_path):
    source = ModelFile(keras_file("v3small"), SHAPE)
    tasks = extract_tasks(source.module(), host_device.target, "depthwise")
    task = min((t for t in tasks if "k5x5" in t.shape), key=lambda t: t.flops)
    log = open_log(tmp_path, host_device.label, host_device.target_config, source.key, create=True)
    report = tune_on(host_device, log, [task], [3])
    records = log.records_of(task.mod)
    assert len(records) == 3 and report.results[0].measured_now == 3
    run_secs = [max(float(s) for s in r.run_secs) for r in records]
    assert max(run_secs) < 1e-2, run_secs  # every candidate built and ran (a failure is 1e10)


def test_tflite_import_failure_is_one_line(keras_file, monkeypatch, capfd):
    """TVM's own converter fails on v1's computed reshape; the frontend's BlockBuilder then logs
    "BlockBuilder destroyed with remaining blocks!" from C++: captured, not printed."""
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    path = keras_file("v1")
    monkeypatch.setattr(tflite_shapes, "StaticShapeConverter", OperatorConverter)
    capfd.readouterr()
    with pytest.raises(ModelImportError, match="TVM's tflite importer failed") as caught:
        load_model_file(path, SHAPE)
    assert "\n" not in str(caught.value)
    assert capfd.readouterr() == ("", "")


def test_onnx_import_failure_is_one_line(tmp_path, capfd):
    """TVM's ONNX frontend refuses a Pad whose pads are computed (its wording depends on how far it
    folds them), printing to stdout on the way: captured, the failure one line."""
    path = model_files.onnx_computed_pads(tmp_path / "computed_pads.onnx")
    capfd.readouterr()
    with pytest.raises(ModelImportError, match="TVM's onnx importer failed") as caught:
        load_model_file(path)
    assert "\n" not in str(caught.value)
    assert capfd.readouterr() == ("", "")


def test_a_pad_after_a_convolution_is_not_its_epilogue(tmp_path, host_device):
    """A template computes the epilogue at the convolution's register tile, which would leave a
    fused pad's border unwritten (tf2onnx's MobileNetV3Small was 0.995 off): pads stay apart."""
    source = ModelFile(model_files.onnx_pad_after_conv(tmp_path / "pad.onnx"))
    tasks = extract_tasks(source.module(), host_device.target)
    assert [t.name for t in tasks if "pad" in t.name] == ["pad"], [t.name for t in tasks]
    report = compile_model(
        CompileArgs(source, host_device, tmp_path / "pad.so", log_dir=None),
        print_fn=lambda _: None,
    )
    assert report.checked_against.startswith("ONNX Runtime") and report.max_abs_error <= TOLERANCE
