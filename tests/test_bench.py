"""The benchmark on a tiny model: every installed peer matches the reference and is timed against
ours, a peer whose import fails is skipped with a note, and the table, PNG and JSON are written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT, assert_usage_error, compile_tiny, run_cli
from tvm_mobilenet.bench.harness import SETTLE_MAX_SECONDS, settle
from tvm_mobilenet.bench.registry import PEERS
from tvm_mobilenet.cli.bench import ALL_PEERS
from tvm_mobilenet.model.architecture import ModelConfig, layers

TINY = ("--alpha", "0.25", "--resolution", "32", "--repeat", "3", "--threads", "1,2")
HIDDEN = "openvino"  # made unimportable in the bench's process, as if not installed


def _installed(peer: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in PEERS[peer].modules)


def _bench_without(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    """Run the bench CLI in a process where `import <module>` fails (None in sys.modules)."""
    code = (
        f"import sys, runpy; sys.modules[{module!r}] = None; sys.argv = ['bench', "
        f"*{list(args)!r}]; "
        "runpy.run_module('tvm_mobilenet.bench', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = _bench_without(
        HIDDEN, *TINY, "--plot", str(out / "bench.png"), "--json", str(out / "bench.json"), cwd=out
    )  # no tuning_logs/ here: ours is compiled untuned
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "bench.json").read_text()), out


def test_installed_peers_match_the_reference_and_get_ratios(bench_run):
    result, report, _ = bench_run
    expected = {"tvm_mobilenet"} | {p for p in ALL_PEERS if p != HIDDEN and _installed(p)}
    by_key = {(r["name"], r["threads"]): r for r in report["results"]}
    assert {name for name, _ in by_key} == expected
    for threads in (1, 2):
        for name in expected:
            row = by_key[(name, threads)]
            assert row["status"] == "timed", row
            assert row["max_abs_error"] <= 1e-4, row
            assert len(row["latencies_ms"]) == 3 and row["median_ms"] > 0
            ratio = report["ratio_to_ours"][f"{name}@{threads}"]
            assert ratio == pytest.approx(
                row["median_ms"] / by_key[("tvm_mobilenet", threads)]["median_ms"]
            )
            # each system's share of the peak measured at this thread count: flops / median / peak
            peak = report["fma_peak"][str(threads)]
            assert peak["threads"] == threads and peak["gflops"] > 0
            assert report["percent_of_fma_peak"][f"{name}@{threads}"] == pytest.approx(
                100 * report["gflop"] / (row["median_ms"] * 1e-3) / peak["gflops"]
            )
    assert "÷ ours" in result.stdout and "1.00x" in result.stdout
    assert "share of the FMA peak (" in result.stdout and "GFLOP/s measured at 2 thread(s)" in (
        result.stdout
    )
    assert "ours / best peer" in result.stdout or expected == {"tvm_mobilenet"}
    # how much of ours went onto huge pages (run/huge_pages.py), since the peers' memory does not
    assert any(re.match(r"ours: \d+ MiB of its memory on 2 MB pages", n) for n in report["notes"])


def test_the_report_names_the_machine_and_the_time_it_ran(bench_run):
    import tvm

    result, report, _ = bench_run
    machine = report["machine"]
    assert machine["llvm_cpu"] == str(tvm.target.codegen.llvm_get_system_cpu())  # same machine
    assert machine["cpu_model"] and machine["cores"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", machine["started"])
    table = result.stdout[result.stdout.index("machine: ") :]
    assert table.startswith(
        f"machine: {machine['cores']} cores of {machine['cpu_model']} "
        f"(LLVM `{machine['llvm_cpu']}`), started {machine['started']}\nMobileNet v1 alpha=0.25"
    )


def test_a_peer_that_cannot_be_imported_is_skipped_with_a_note(bench_run):
    result, report, _ = bench_run
    notes = [note for note in report["notes"] if note.startswith("OpenVINO skipped: not installed")]
    assert len(notes) == 1 and "pip install '.[bench]'" in notes[0]
    assert "note: OpenVINO skipped" in result.stdout
    assert all(r["name"] != HIDDEN for r in report["results"])


def test_the_plot_is_a_png(bench_run):
    _, _, out = bench_run
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_peer_is_a_usage_error():
    assert_usage_error(
        run_cli("bench", "--peers", "ort,tensorrt"), "--peers", "ort,openvino,tflite,torch"
    )


def test_a_missing_module_is_a_usage_error(tmp_path):
    missing = tmp_path / "missing.so"
    assert_usage_error(
        run_cli(
            "bench",
            *TINY,
            "--peers",
            "ort",
            "--module",
            str(missing),
            "--plot",
            str(tmp_path / "x.png"),
        ),
        str(missing),
        "does not exist",
    )


def test_the_app_flag_needs_processes_and_an_existing_binary(tmp_path):
    assert_usage_error(run_cli("bench", "--app", str(tmp_path)), "--app", "--processes N")
    missing = tmp_path / "mobilenet_app"
    assert_usage_error(
        run_cli("bench", "--processes", "1", "--app", str(missing)),
        str(missing),
        "python -m tvm_mobilenet.bundle",
    )


def test_processes_mode_reports_each_process_median(tmp_path):
    peers = [p for p in ("ort", "tflite") if _installed(p)][:1]
    out = tmp_path / "spread.json"
    result = run_cli(
        "bench",
        *TINY,
        "--processes",
        "2",
        "--peers",
        ",".join(peers or ["ort"]),
        "--json",
        str(out),
        cwd=tmp_path,  # no tuning_logs/ here: ours is compiled untuned
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    names = ["tvm_mobilenet", *peers]
    assert report["processes"] == 2 and report["repeat"] == 3
    for threads in (1, 2):
        for name in names:
            medians = [
                r["median_ms"]
                for r in report["rows"]
                if r["name"] == name and r["threads"] == threads
            ]
            assert len(medians) == 2 and min(medians) > 0
            assert report["spread"][f"{name}@{threads}"] == pytest.approx(
                max(medians) / min(medians)
            )
    assert "per-process medians" in result.stdout and "max/min" in result.stdout


def test_profile_names_each_kernel_and_compares_layers_with_onnx_runtime(tmp_path):
    module, out = tmp_path / "tiny.so", tmp_path / "profile.json"
    built = compile_tiny(module, "--no-log")
    assert built.returncode == 0, built.stderr[-3000:]
    peers = ("--peers", "ort") if _installed("ort") else ()
    result = run_cli(
        "bench",
        "--profile",
        "--module",
        str(module),
        *TINY,
        *peers,
        "--json",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    profiles = json.loads(out.read_text())
    assert [p["threads"] for p in profiles] == [1, 2]
    for profile in profiles:
        calls = {}
        for kernel in profile["kernels"]:
            calls[kernel["kind"]] = calls.get(kernel["kind"], 0) + kernel["calls"]
        # MobileNet v1: 13 depthwise + 13 pointwise layers, the first conv, and one of each other
        assert calls == {
            "depthwise": 13,
            "pointwise": 13,
            "conv": 1,
            "classifier": 1,
            "softmax": 1,
            "pooling": 1,
            "layout": 1,
        }
        times = [kernel["total_us"] for kernel in profile["kernels"]]
        assert times == sorted(times, reverse=True) and profile["whole_model_us"] > 0
        assert all(kernel["alone_us"] > 0 for kernel in profile["kernels"])  # timed by itself
        if peers:
            _assert_layers_match_the_paper(profile["against_ort"]["layers"])
    assert "by kind: " in result.stdout and "in the model - alone, by kind: " in result.stdout
    if not peers:
        return
    assert "layer by layer against ONNX Runtime" in result.stdout
    wrong = run_cli(
        "bench",
        "--profile",
        "--module",
        str(module),
        *TINY[2:],
        "--alpha",
        "0.5",
        "--resolution",
        "32",
        *peers,
        cwd=tmp_path,
    )
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "conv1 outputs 1x16x16x8, the model's 1x16x16x16" in wrong.stderr


def _assert_layers_match_the_paper(rows: list[dict]) -> None:
    """The model's 27 convolutions in Table 1's order with their output shapes, each timed on both
    sides, then the other steps by kind."""
    config = ModelConfig(alpha=0.25, resolution=32)
    table = [layer for layer in layers(config) if layer.kind not in {"avgpool", "fc"}]
    convs, rest = rows[: len(table)], rows[len(table) :]
    assert [r["name"] for r in convs] == [layer.name for layer in table]
    for row, layer in zip(convs, table, strict=True):
        size = layer.out_size
        assert row["kind"] == layer.kind
        assert row["shape"].endswith(f"-> 1x{size}x{size}x{layer.out_channels}")
        assert row["ours_us"] > 0 and row["ort_us"] > 0
    kinds = {r["kind"]: r for r in rest}
    assert {"pooling", "classifier", "softmax", "layout"} <= set(kinds)
    for kind in ("pooling", "classifier", "softmax"):
        assert kinds[kind]["ours_us"] > 0 and kinds[kind]["ort_us"] > 0
    assert kinds["layout"]["ours_us"] > 0  # ours transposes NCHW to NHWC; ORT may not


def test_settle_waits_until_no_thread_of_the_process_computes():
    """The bench's pause between systems lasts while another thread spins (a peer's pool after its
    call), and ends soon when nothing does."""
    spin_until = time.perf_counter() + 0.3

    def spin():
        while time.perf_counter() < spin_until:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    waited = settle()
    assert not spinner.is_alive() and 0.3 <= waited + 0.02 < SETTLE_MAX_SECONDS
    assert settle() < SETTLE_MAX_SECONDS / 2


def test_profile_needs_a_module():
    assert_usage_error(run_cli("bench", "--profile", *TINY), "--profile", "--module")


def test_the_busy_note_counts_other_processes_not_the_bench_itself():
    """The note says how much CPU other processes took during the run: a process spinning beside
    it shows; the bench's own work (here: spinning in this process) does not."""
    from tvm_mobilenet.bench.load import BUSY_SHARE, OthersCpu

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    alone = OthersCpu()
    spin(0.6)
    assert alone.share() < 0.5 / (os.cpu_count() or 1)  # ours: 1 core; only others count
    crowded = OthersCpu()
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=0.8)])
    spin(1.0)
    share, note = crowded.share(), crowded.note()
    spinner.wait()
    assert share > 0.4 / (os.cpu_count() or 1), note  # most of one core of the cores
    assert "other processes took" in note, note
    # flagged as busy by its share of all cores: on 2 cores one spinning neighbour is enough
    assert ("machine was busy" in note) == (share > BUSY_SHARE), note


SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"


def test_the_input_every_system_gets_is_aligned_for_ours_to_take_in_place():
    """ONNX Runtime takes a numpy input without copying it; TVM does where the data is 64-byte
    aligned, so the bench gives every system an aligned copy of the input."""
    import numpy as np

    from tvm_mobilenet.bench.harness import aligned

    buffer = np.arange(120, dtype=np.float32)
    for offset in range(4):  # whatever the source's alignment
        source = buffer[offset : offset + 105].reshape(1, 3, 5, 7)
        copy = aligned(source)
        assert copy.ctypes.data % 64 == 0 and copy.flags.writeable and copy.flags.c_contiguous
        assert copy.dtype == source.dtype and np.array_equal(copy, source)


def test_ours_hands_its_output_over_without_a_copy(tmp_path):
    """Ours returns a view of the call's output tensor (np.from_dlpack), not Tensor.numpy()'s copy,
    whose Python steps after the model cost ~0.1 ms per call; each call's view keeps its values."""
    import numpy as np

    from tests.conftest import TINY_MODEL
    from tvm_mobilenet.bench.harness import aligned
    from tvm_mobilenet.bench.peers.ours import Ours
    from tvm_mobilenet.model import reference
    from tvm_mobilenet.model.weights import random_weights
    from tvm_mobilenet.run.threads import pool_threads

    module = tmp_path / "m.so"
    assert compile_tiny(module, "--no-log").returncode == 0
    config = ModelConfig(**TINY_MODEL)
    weights = random_weights(config, 0)
    threads = pool_threads()  # this process's pool as it is
    predict = Ours(module).prepare(config, weights, threads)
    inputs = [aligned(reference.random_input(config.input_shape, seed)) for seed in (1, 2)]
    first = predict(inputs[0])
    kept = first.copy()
    second = predict(inputs[1])
    assert not first.flags.owndata and np.array_equal(first, kept)
    for data, output in zip(inputs, (first, second), strict=True):
        assert np.max(np.abs(output - reference.forward(config, weights, data))) < 1e-4
    assert not np.array_equal(first, second)


def test_the_bench_says_when_ours_runs_strassen_kernels(tmp_path):
    """0.25/128's 8x8x128 1x1 layers run as Strassen kernels where the host builds them (AVX-512;
    with one core its 4x4 ones too): the module's program names them, and the bench says how many
    beside the shares of the FMA peak, which count the model's FLOPs."""
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.model.source import load_model
    from tvm_mobilenet.run.runtime import LoadedModel
    from tvm_mobilenet.tasks.extract import extract_tasks
    from tvm_mobilenet.tasks.strassen import strassen_tasks

    host = load_device("x86")  # as compile resolves it: this CPU, the cores this process may use
    tasks = extract_tasks(load_model(ModelConfig(0.25, 128))[0], host.target)
    expected = sum(t.weight for t in strassen_tasks(tasks, host.target, "x86"))
    module = tmp_path / "m.so"
    small = ("--alpha", "0.25", "--resolution", "128")
    assert compile_tiny(module, *small, "--no-log").returncode == 0
    calls = LoadedModel(module).kernel_calls()
    assert len(calls) == 31 and sum(name.endswith("_strassen") for name in calls) == expected
    out = tmp_path / "bench.json"
    result = run_cli(
        "bench",
        "--module",
        str(module),
        *small,
        "--threads",
        "1",
        "--repeat",
        "1",
        "--peers",
        "ort",
        "--plot",
        str(tmp_path / "b.png"),
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    notes = [n for n in json.loads(out.read_text())["notes"] if "Strassen" in n]
    note = (
        f"ours: {expected} layers run as Strassen kernels, 7/8 of their multiply-adds; every "
        "system's share of the FMA peak counts the model's FLOPs"
    )
    assert notes == ([note] if expected else [])
