"""`bench --grid`: each alpha x resolution built untuned, checked and timed against the peers, and
the table's ratios are the points' own medians (ours / the fastest peer)."""

from __future__ import annotations

import json
import statistics

import pytest

from tests.conftest import assert_usage_error, run_cli
from tvm_mobilenet.bench.grid import GridReport, format_grid
from tvm_mobilenet.bench.harness import SystemResult
from tvm_mobilenet.bench.report import OURS, BenchReport
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.reference import SOFTMAX_TOLERANCE


def test_grid_benches_each_point_and_takes_ratios_from_its_medians(tmp_path):
    out = tmp_path / "grid.json"
    result = run_cli(
        "bench",
        "--grid",
        "--alphas",
        "0.25",
        "--resolutions",
        "32,64",
        "--peers",
        "ort",
        "--threads",
        "1",
        "--repeat",
        "3",
        "--json",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    grid = json.loads(out.read_text())
    assert [(p["alpha"], p["resolution"]) for p in grid["points"]] == [(0.25, 32), (0.25, 64)]
    for point in grid["points"]:
        bench = point["bench"]
        assert bench["model"]["resolution"] == point["resolution"]
        medians = {r["name"]: statistics.median(r["latencies_ms"]) for r in bench["results"]}
        assert set(medians) == {OURS, "ort"}
        assert all(len(r["latencies_ms"]) == 3 for r in bench["results"])
        assert all(r["max_abs_error"] <= SOFTMAX_TOLERANCE for r in bench["results"])
        assert point["ours_over_best_peer"]["1"] == pytest.approx(medians[OURS] / medians["ort"])
    assert "| α \\ ρ | 32 | 64 |" in result.stdout
    assert grid["machine"]["llvm_cpu"] and "machine: " in result.stdout
    assert "[2/2] alpha 0.25 resolution 64: built untuned" in result.stdout
    assert "best peer: ONNX Runtime at 2" in result.stdout


def _point(alpha: float, resolution: int, ours_ms: float, peers_ms: dict[str, float]):
    report = BenchReport(ModelConfig(alpha, resolution), threads=[1], repeat=1)
    report.results.append(SystemResult(OURS, "tvm_mobilenet", 1, "timed", latencies_ms=[ours_ms]))
    for label, ms in peers_ms.items():
        report.results.append(SystemResult(label.lower(), label, 1, "timed", latencies_ms=[ms]))
    return report


def test_the_table_puts_alphas_in_rows_and_resolutions_in_columns():
    grid = GridReport((0.25, 0.5), (128, 160), threads=[1])
    grid.points = {
        (0.25, 128): _point(0.25, 128, 0.30, {"ORT": 0.40, "TFLite": 0.36}),
        (0.25, 160): _point(0.25, 160, 0.05, {"ORT": 0.04}),
        (0.5, 128): _point(0.5, 128, 1.20, {"ORT": 1.00, "TFLite": 1.50}),
        (0.5, 160): _point(0.5, 160, 4.00, {"ORT": 2.00}),
    }
    lines = format_grid(grid).splitlines()
    assert "| 0.25 | 0.83 (0.30 / 0.36) | 1.25 (0.050 / 0.040) |" in lines
    assert "| 0.5 | 1.20 (1.20 / 1.00) | 2.00 (4.00 / 2.00) |" in lines
    assert (
        "1 thread(s): ours / best peer 0.83-2.00 (median 1.23); goal <= 1.5: met at 3 of 4 points"
        in lines
    )
    assert "best peer: ORT at 3, TFLite at 1" in lines


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (("--module", "x.so", "--alpha", "0.5"), ("--grid", "drop --module, --alpha")),
        (("--alphas", "0.25,1.5"), ("alpha=1.5", "0 < alpha <= 1")),
        (("--resolutions", "100"), ("resolution 100", "multiple of 32")),
        (("--alphas", "wide"), ("--alphas", "comma-separated widths")),
    ],
)
def test_bad_grid_flags_are_one_line_errors(flags, fragments):
    assert_usage_error(run_cli("bench", "--grid", "--peers", "ort", *flags), *fragments)
