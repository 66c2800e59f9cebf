"""Bad input: one line on stderr that says what is wrong and what to do, exit code 2, no
traceback."""

import io
import shutil
import zipfile

import numpy as np
import pytest

from tvm_mobilenet.errors import WeightsError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.weights import load_weights, random_weights, save_weights

from .conftest import LOG_DEVICE, assert_usage_error, compile_tiny, run_cli


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
    device = ["--target", LOG_DEVICE[0], "--device", LOG_DEVICE[1]]
    return compile_tiny(output, *device, "--log-dir", str(log_dir), *flags)


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
    result = compile_tiny(output, "--no-log", "--tolerance", "0")
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


# ---------------------------------------------------------------- untrusted files and outputs


def fake_module(path):
    """Bytes that pass the bundle's ELF check (x86-64) but are no module: enough for checks that
    come before any load."""
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[18:20] = (0x3E).to_bytes(2, "little")
    path.write_bytes(bytes(header))
    return path


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: np.savez(p, x=np.zeros((1, 3, 32, 32), np.float32)), "is a .npz archive"),
        (lambda p: np.save(p, np.array(["cat", "dog"])), "<U3 values, not numbers"),
        (lambda p: p.write_bytes(huge_npy_header()), "the file is shorter"),
        (lambda p: p.write_text("not an array\n"), "cannot use"),
    ],
)
def test_run_checks_the_input_from_its_header(tmp_path, make, fragment):
    path = tmp_path / "x.npy"
    make(path)
    if not path.exists():  # np.savez appends .npz
        (tmp_path / "x.npy.npz").rename(path)
    result = run_cli("run", str(fake_module(tmp_path / "m.so")), "--input", str(path))
    assert_usage_error(result, str(path), fragment)


def huge_npy_header() -> bytes:
    """A .npy header claiming 4 x 10^12 floats, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (1, 3, 1000000, 1000000)}
    )
    return buffer.getvalue()


def test_outputs_that_would_destroy_an_input_or_cannot_be_written(tmp_path):
    module = fake_module(tmp_path / "m.so")
    (tmp_path / "file").write_text("a file, not a folder")
    weights = tmp_path / "w.npz"
    save_weights(random_weights(ModelConfig(0.25, 32)), weights)
    tiny = ["--alpha", "0.25", "--resolution", "32", "--no-log"]
    cases = [
        (["run", str(module), "--output", str(module)], "is also the module file"),
        (["run", str(module), "--output", str(tmp_path / "file" / "y.npy")], "cannot write"),
        (["compile", *tiny, "-o", str(tmp_path)], "is a directory"),
        (["compile", *tiny, "--weights", str(weights), "-o", str(weights)], "also the --weights"),
        (["model", "--weights", str(weights), "--save-weights", str(weights)], "--weights file"),
        (["bundle", str(module), "-o", str(tmp_path)], "is the folder m.so is in"),
    ]
    before = snapshot(tmp_path)
    for args, fragment in cases:
        assert_usage_error(run_cli(*args), fragment)
    assert snapshot(tmp_path) == before  # nothing written, no staging file left


def test_a_weights_archive_is_checked_before_it_is_decompressed(tmp_path):
    """A small archive whose conv1.weight inflates to 256 MB of zeros: refused from its header."""
    config = ModelConfig(0.25, 32)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in random_weights(config).items():
            if name != "conv1.weight":
                with archive.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, array)
        with archive.open("conv1.weight.npy", "w", force_zip64=True) as member:
            shape = (8192, 8192)  # float32: 256 MB
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": shape}
            )
            zeros = bytes(1 << 20)
            for _ in range(256):
                member.write(zeros)
    with zipfile.ZipFile(bomb) as archive:  # the bomb itself: 256 MB in well under 1 MB
        assert archive.getinfo("conv1.weight.npy").compress_size < 1e6
    with pytest.raises(WeightsError, match=r"'conv1.weight' has shape \(8192, 8192\)"):
        load_weights(config, bomb)
