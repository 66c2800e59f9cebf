"""Bring your own model: ONNX, TFLite and PyTorch MobileNets made here by their frameworks,
imported, tuned,
compiled for x86 and checked against the framework's own runtime; bad files get one clean line."""

import json
import re

import numpy as np
import pytest

from tvm_mobilenet.cli import compile as compile_cli
from tvm_mobilenet.errors import ModelImportError, TvmMobilenetError, VerificationError
from tvm_mobilenet.model.frameworks import run_source
from tvm_mobilenet.model.importers import load_model_file
from tvm_mobilenet.model.reference import as_probabilities
from tvm_mobilenet.model.source import ModelFile
from tvm_mobilenet.schedules.templates import template_kind
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import META_FILE, open_log

from . import model_files
from .conftest import ROOT, assert_usage_error, run_cli, tune_on

TOLERANCE = 1e-4
FORMATS = ("onnx", "tflite", "pt2")
RESOLUTION = model_files.RESOLUTION
TRUST = "--trust-model-file"  # needed for .pt2 (loading one can run code), harmless for others


def _make(kind: str, directory):
    if kind == "onnx":
        return model_files.export_onnx(model_files.torch_mobilenet(), directory / "mobilenet.onnx")
    if kind == "pt2":
        return model_files.export_pt2(model_files.torch_mobilenet(), directory / "mobilenet.pt2")
    return model_files.keras_tflite(directory / "mobilenet.tflite")


@pytest.fixture(scope="module")
def model_file(request, tmp_path_factory):
    """One real model file per format, made once per test module."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = _make(kind, tmp_path_factory.mktemp(kind))
        return cache[kind]

    return get


@pytest.mark.parametrize("kind,layout", [("onnx", "NCHW"), ("tflite", "NHWC"), ("pt2", "NCHW")])
def test_import_finds_input_and_labels_depthwise_and_pointwise(
    kind, layout, model_file, host_device
):
    imported = load_model_file(model_file(kind), trusted=True)
    assert imported.source_format == kind and imported.layout == layout
    resolution = model_files.RESOLUTION
    nchw, nhwc = (1, 3, resolution, resolution), (1, resolution, resolution, 3)
    assert imported.input_shape == (nchw if layout == "NCHW" else nhwc)
    tasks = extract_tasks(imported.mod, host_device.target)
    kinds = [task.kind for task in tasks]
    # Every depthwise-separable block's convolutions are recognised, NHWC ones included.
    assert kinds.count("depthwise") >= 5 and kinds.count("pointwise") >= 5, [
        (t.kind, t.name) for t in tasks
    ]
    # BatchNorm, bias and activation are fused into the convolution, with no layout transposes
    # between them.
    convs = [t.name for t in tasks if t.kind in ("depthwise", "pointwise")]
    assert all("add" in name and "transpose" not in name for name in convs), convs
    # ... and get the project's templates, like the built-in model's.
    assert all(template_kind(t.mod) for t in tasks if t.kind in ("depthwise", "pointwise"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", FORMATS)
def test_compile_matches_the_source_runtime(kind, model_file, tmp_path):
    path = model_file(kind)
    output = tmp_path / f"{kind}.so"
    result = run_cli("compile", "--model", str(path), TRUST, "--no-log", "-o", str(output))
    assert result.returncode == 0, result.stderr
    match = re.search(r"verified against (.+): max abs error (\S+) on the softmax", result.stdout)
    assert match and float(match.group(2)) <= TOLERANCE, result.stdout

    # The .so runs unchanged in a runtime-only process; its output matches the framework's own, here
    # too.
    result = run_cli(
        "run",
        str(output),
        "--json",
        "--repeat",
        "1",
        "--output",
        str(tmp_path / "y.npy"),
        "--model",
        str(path),
        TRUST,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["source"]["max_abs_error"] <= TOLERANCE
    source = ModelFile(path, trusted=True)
    assert tuple(summary["input_shape"]) == source.input_shape
    _, expected = run_source(kind, path, source.sample_input())
    expected = as_probabilities(expected)
    assert (
        expected.max() - expected.min() > 0.05
    )  # a peaked softmax: the comparison means something
    error = float(np.max(np.abs(np.load(tmp_path / "y.npy") - expected)))
    assert error <= TOLERANCE
    assert summary["top5"][0][0] == int(np.argmax(expected[0]))


@pytest.mark.slow
def test_tune_a_depthwise_task_of_a_tflite_model_then_compile_with_it(
    model_file, host_device, tmp_path
):
    source = ModelFile(model_file("tflite"))
    tasks = sorted(
        extract_tasks(source.module(), host_device.target, "depthwise"), key=lambda task: task.flops
    )
    log = open_log(
        tmp_path / "log", host_device.label, host_device.target_config, source.key, create=True
    )
    report = tune_on(host_device, log, tasks[:1], [2])
    assert report.measured_now == 2 and report.results[0].best_seconds is not None
    meta = json.loads((tmp_path / "log" / META_FILE).read_text())
    assert meta["model"]["file"] == "mobilenet.tflite" and len(meta["model"]["sha256"]) == 64

    result = run_cli(
        "compile",
        "--model",
        str(source.path),
        "--log-dir",
        str(tmp_path / "log"),
        "-o",
        str(tmp_path / "tuned.so"),
    )
    assert result.returncode == 0, result.stderr
    untuned = result.stdout.count("warning: no tuning record")
    assert untuned == len(extract_tasks(source.module(), host_device.target)) - 1
    assert tasks[0].name not in result.stdout.split("verified")[0].split("records from")[1]
    assert "verified against the TFLite interpreter" in result.stdout


def test_tune_cli_records_the_model_file_in_the_log(model_file, tmp_path):
    path = model_file("onnx")
    result = run_cli(
        "tune", "--model", str(path), "--trials", "0", "--log-dir", str(tmp_path / "log")
    )
    assert result.returncode == 0, result.stderr
    assert "depthwise" in result.stdout and "pointwise" in result.stdout  # the per-task table
    meta = json.loads((tmp_path / "log" / META_FILE).read_text())
    assert meta["model"] == ModelFile(path).key
    # The same log refuses another model file.
    onnx = model_files.require("onnx")
    other_model = onnx.load(str(path))
    other_model.doc_string = "the same network, another file"
    other = tmp_path / "other.onnx"
    onnx.save(other_model, str(other))
    assert_usage_error(
        run_cli(
            "compile",
            "--model",
            str(other),
            "--log-dir",
            str(tmp_path / "log"),
            "-o",
            str(tmp_path / "m.so"),
        ),
        "was made for model",
    )


def test_dynamic_input_shape_is_taken_from_the_flag(tmp_path):
    path = model_files.export_onnx(
        model_files.torch_mobilenet(), tmp_path / "dynamic.onnx", dynamic_batch=True
    )
    assert_usage_error(
        run_cli("compile", "--model", str(path), "--no-log", "-o", str(tmp_path / "m.so")),
        "dynamic.onnx",
        "dynamic shape [batch, 3, 32, 32]",
        "--input-shape 1,3,32,32",
    )
    assert load_model_file(path, (1, 3, 32, 32)).input_shape == (1, 3, 32, 32)


def test_compile_says_when_it_could_not_check(model_file, tmp_path):
    """With onnxruntime not importable, compile still writes the module and says plainly it is
    unchecked."""
    blocker = tmp_path / "blocker" / "onnxruntime"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('onnxruntime is blocked by this test')\n"
    )
    result = run_cli(
        "compile",
        "--model",
        str(model_file("onnx")),
        "--no-log",
        "-o",
        str(tmp_path / "m.so"),
        env={"PYTHONPATH": f"{blocker.parent}:{ROOT}"},
    )
    assert result.returncode == 0, result.stderr
    assert "NOT CHECKED against the source framework: onnxruntime is not installed" in result.stdout
    assert (tmp_path / "m.so").exists()


# ---------------------------------------------------------------------------- bad models


def _unsupported_operator_file(kind: str, directory):
    """A MobileNet with one operator TVM 0.27's frontend cannot convert, and that operator's
    name."""
    if kind == "onnx":
        torch = model_files.require("torch")
        return model_files.export_onnx(
            model_files.torch_mobilenet(torch.nn.CELU()), directory / "celu.onnx"
        ), "Celu"
    if kind == "pt2":
        torch = model_files.require("torch")

        class LogGamma(torch.nn.Module):
            def forward(self, x):
                return torch.lgamma(x)

        return model_files.export_pt2(
            model_files.torch_mobilenet(LogGamma()), directory / "lgamma.pt2"
        ), "lgamma"
    tf = model_files.require("tensorflow")
    path = model_files.keras_tflite(
        directory / "cumprod.tflite", extra=lambda p: tf.math.cumprod(p, axis=-1)
    )
    return path, "CUSTOM 'Cumprod'"


@pytest.mark.parametrize("kind", FORMATS)
def test_bad_model_files(kind, model_file, tmp_path):
    good = model_file(kind).read_bytes()
    truncated = tmp_path / f"truncated.{kind}"
    truncated.write_bytes(good[: len(good) // 2])
    assert_usage_error(
        run_cli(
            "compile", "--model", str(truncated), TRUST, "--no-log", "-o", str(tmp_path / "m.so")
        ),
        truncated.name,
        "truncated",
    )
    assert not list(tmp_path.glob("*.so"))
    # The rest in this process: the CLI turns the same ModelImportError into the same one line.
    not_a_model = tmp_path / f"notes.{kind}"
    not_a_model.write_text("these are my notes, not a model\n" * 20)
    unsupported, operator = _unsupported_operator_file(kind, tmp_path)
    cases = [
        (not_a_model, [f"notes.{kind} is not a"]),
        (unsupported, ["unsupported operator", operator]),
    ]
    for path, fragments in cases:
        with pytest.raises(ModelImportError) as error:
            load_model_file(path, trusted=True)
        assert all(fragment in str(error.value) for fragment in fragments), str(error.value)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--model", "mobilenet.h5"], "unknown model format '.h5'"),
        (["--model", "absent.onnx"], "absent.onnx does not exist"),
        (["--model", "{onnx}", "--alpha", "0.5"], "--alpha apply to the built-in MobileNet"),
        (["--input-shape", "1,3,32,32"], "--input-shape applies to --model FILE"),
        (["--model", "{onnx}", "--input-shape", "1,3,x"], "is not a list of positive integers"),
        (["--model", "{onnx}", "--input-shape", "1,32,32"], "--input-shape has 3 dimensions"),
    ],
)
def test_bad_model_flags(args, fragment, model_file, tmp_path):
    args = [a.format(onnx=model_file("onnx")) if "{" in a else a for a in args]
    with pytest.raises(TvmMobilenetError, match=re.escape(fragment)):
        compile_cli.main([*args, "--no-log", "-o", str(tmp_path / "m.so")])
    assert not (tmp_path / "m.so").exists()


def test_bad_model_flag_on_the_command_line(tmp_path):
    assert_usage_error(
        run_cli("tune", "--model", "mobilenet.h5", "--log-dir", str(tmp_path / "log")),
        "unknown model format '.h5'",
    )
    assert not (tmp_path / "log").exists()


def test_a_pt2_file_is_read_only_when_trusted(model_file, tmp_path):
    """torch.export.load unpickles: a downloaded .pt2 could run anything it holds."""
    path = model_file("pt2")
    for command in (["compile", "-o", str(tmp_path / "m.so")], ["tune", "--trials", "0"]):
        result = run_cli(*command, "--model", str(path), "--log-dir", str(tmp_path / "log"))
        assert_usage_error(result, "mobilenet.pt2", "can run code", TRUST)
    assert not (tmp_path / "m.so").exists() and not (tmp_path / "log").exists()
    with pytest.raises(ModelImportError, match=TRUST):
        ModelFile(path)


def test_a_framework_that_cannot_run_the_file_is_one_error(model_file, tmp_path):
    """ONNX Runtime refuses a file that TVM imports (here: an IR version from the future)."""
    onnx = model_files.require("onnx")
    model = onnx.load(str(model_file("onnx")))
    model.ir_version = 99
    path = tmp_path / "future.onnx"
    onnx.save(model, str(path))
    with pytest.raises(VerificationError, match=r"ONNX Runtime could not run future\.onnx"):
        run_source("onnx", path, np.zeros((1, 3, RESOLUTION, RESOLUTION), np.float32))
