"""Bad input: one line on stderr that says what is wrong and what to do, exit code 2, no
traceback."""

import shutil

import pytest

from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.weights import random_weights, save_weights

from .conftest import LOG_DEVICE, TINY_MODEL, assert_usage_error, run_cli


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--target", "riscv"], "unknown target 'riscv'"),
        (["--device", "pentium"], "unknown device 'pentium'"),
        (["--alpha", "1.5"], "alpha=1.5 is out of range"),
        (["--alpha", "0"], "alpha=0.0 is out of range"),
        (["--resolution", "100"], "resolution 100 is not a multiple of 32"),
        (["--trials", "-1"], "--trials -1 must be >= 0"),
    ],
)
def test_tune_rejects(args, fragment, tmp_path):
    assert_usage_error(run_cli("tune", "--log-dir", str(tmp_path / "log"), *args), fragment)
    assert not (tmp_path / "log").exists() or not any((tmp_path / "log").glob("database_*"))


def test_weights_with_wrong_names_or_shapes(tmp_path):
    weights = random_weights(ModelConfig(0.5, 64))  # made for another alpha
    save_weights(weights, tmp_path / "w.npz")
    result = run_cli(
        "compile",
        "--alpha",
        "0.25",
        "--resolution",
        "64",
        "--weights",
        str(tmp_path / "w.npz"),
        "-o",
        str(tmp_path / "m.so"),
        "--no-log",
    )
    assert_usage_error(result, "w.npz", "expected")
    weights = random_weights(ModelConfig(0.25, 64))
    weights["conv1.kernel"] = weights.pop("conv1.weight")
    save_weights(weights, tmp_path / "renamed.npz")
    result = run_cli(
        "model",
        "--alpha",
        "0.25",
        "--weights",
        str(tmp_path / "renamed.npz"),
        "--save-weights",
        str(tmp_path / "copy.npz"),
    )
    assert_usage_error(result, "missing 1 array", "conv1.weight")


@pytest.fixture
def log_dir(tmp_path, tiny_log):
    """A copy of the session's tiny log (x86 'avx2', MobileNet 0.25/32)."""
    shutil.copytree(tiny_log, tmp_path / "log")
    return tmp_path / "log"


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def compile_with_log(log_dir, output, *flags):
    model = ["--alpha", str(TINY_MODEL["alpha"]), "--resolution", str(TINY_MODEL["resolution"])]
    device = ["--target", LOG_DEVICE[0], "--device", LOG_DEVICE[1]]
    return run_cli("compile", *model, *device, "--log-dir", str(log_dir), "-o", str(output), *flags)


def test_log_for_another_model(tmp_path, log_dir):
    before = snapshot(log_dir)
    result = compile_with_log(log_dir, tmp_path / "m.so", "--alpha", "0.5")
    assert_usage_error(result, "was made for model")
    assert snapshot(log_dir) == before
    assert not (tmp_path / "m.so").exists()


def test_log_for_another_target(tmp_path, log_dir):
    before = snapshot(log_dir)
    result = compile_with_log(log_dir, tmp_path / "m.so", "--device", "avx512")
    assert_usage_error(result, "was made for device")
    assert snapshot(log_dir) == before


def test_unreadable_log(tmp_path, log_dir):
    workloads = log_dir / "database_workload.json"
    workloads.write_text("{broken\n" + workloads.read_text())
    before = snapshot(log_dir)
    result = compile_with_log(log_dir, tmp_path / "m.so")
    assert_usage_error(result, "unreadable log")
    assert snapshot(log_dir) == before


def test_run_rejects_a_file_that_is_not_a_module(tmp_path):
    (tmp_path / "fake.so").write_bytes(b"\x7fELF not really")
    assert_usage_error(run_cli("run", str(tmp_path / "fake.so")), "cannot load")
    assert_usage_error(run_cli("run", str(tmp_path / "absent.so")), "does not exist")


def test_mismatch_leaves_no_valid_looking_file(tmp_path):
    output = tmp_path / "m.so"
    result = run_cli(
        "compile",
        "--alpha",
        "0.25",
        "--resolution",
        "32",
        "--no-log",
        "--tolerance",
        "0",
        "-o",
        str(output),
    )
    assert_usage_error(result, "disagrees with the float64 reference")
    assert not output.exists() and not list(tmp_path.glob("*.so"))


def test_ctrl_c_during_pool_shutdown_is_one_line_and_exit_130(capsys):
    """TVM's worker pools raise "cannot join current thread" on top of Ctrl-C: still the one-line
    message."""
    from tvm_mobilenet.cli import common as cli_args

    def interrupted_tuning():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("cannot join current thread")  # noqa: B904 (what TVM raises)

    with pytest.raises(SystemExit) as exit_info:
        cli_args.run_cli(interrupted_tuning)
    assert exit_info.value.code == cli_args.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted:")
