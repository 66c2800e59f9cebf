"""`bench --target arm --count-instructions`: the JSON names every installed system with positive
counts per inference and ours over the best peer; ours per layer adds up to ours; bad input and a
missing emulation set-up are one line and exit code 2."""

import json

import pytest

from tvm_mobilenet.farm.emulation import SETUP_COMMAND, emulation
from tvm_mobilenet.tasks.extract import KINDS

from .conftest import TINY_MODEL, assert_usage_error, run_cli
from .emulated import require_emulation_setup

TINY = ["--alpha", str(TINY_MODEL["alpha"]), "--resolution", str(TINY_MODEL["resolution"])]
PEER_WHEELS = {"tflite_xnnpack": "litert", "onnxruntime": "onnxruntime"}


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--count-instructions"], "add --target arm"),
        (["--target", "arm"], "add --count-instructions"),
        (["--target", "arm", "--count-instructions", "--peers", "torch"], "not torch"),
        (["--target", "arm", "--device", "pixel", "--count-instructions"], "arm/pixel cannot run"),
    ],
)
def test_bad_combinations(args, fragment):
    assert_usage_error(run_cli("bench", *TINY, *args), fragment)


def test_missing_setup_names_the_command(tmp_path):
    result = run_cli(
        "bench",
        *TINY,
        "--target",
        "arm",
        "--count-instructions",
        env={"TVM_MOBILENET_CACHE": str(tmp_path)},
    )
    assert_usage_error(result, "instruction counting is not set up", SETUP_COMMAND)


@pytest.mark.slow
def test_counts_of_every_installed_system(tmp_path):
    """About 1.5 minutes on a busy 2-core host: ours cross-compiled, then two emulated runs of each
    of the three systems."""
    require_emulation_setup()
    if emulation().counting_missing():
        pytest.skip(f"instruction counting is not set up: run `{SETUP_COMMAND}`")
    out = tmp_path / "counts.json"
    args = ["--target", "arm", "--device", "rasp4b", "--count-instructions", "--json", str(out)]
    result = run_cli("bench", *TINY, *args, timeout=1800)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    installed = [
        name
        for name, wheels in PEER_WHEELS.items()
        if (emulation().peer_wheels(wheels) / ".complete").is_file()
    ]
    assert set(report["systems"]) == {"tvm_mobilenet", *installed}
    for name, system in report["systems"].items():
        assert system["instructions"] > 0 and system["fma_instructions"] > 0, name
        assert system["fma_instructions"] < system["instructions"]
        assert system["status"] == "counted" and system["max_abs_error"] <= 1e-4, name
    if installed:
        best = min(report["systems"][name]["instructions"] for name in installed)
        ours = report["systems"]["tvm_mobilenet"]["instructions"]
        assert report["ours_over_best"] == pytest.approx(ours / best, rel=1e-3)
    # Per layer: every instruction of ours is charged to a kernel or to what runs around them.
    layers = report["layers"]
    assert {"depthwise", "pointwise", "conv"} <= {layer["kind"] for layer in layers} <= set(KINDS)
    attributed = sum(layer["instructions"] for layer in layers) + report["outside_kernels"]
    assert attributed == pytest.approx(report["systems"]["tvm_mobilenet"]["instructions"], 0.01)
    assert "tvm_mobilenet" in result.stdout and "per layer" in result.stdout
