"""Mult-adds and parameters against the paper's Tables 6 and 7 (Howard et al. 2017)."""

import json

import pytest

from tvm_mobilenet.errors import ModelSpecError
from tvm_mobilenet.model.architecture import ModelConfig, layer_table, layers, totals

from .conftest import run_cli

# (alpha, resolution, million mult-adds, million parameters) as printed in the paper.
PAPER = [
    (1.0, 224, 569, 4.2),  # Table 6
    (0.75, 224, 325, 2.6),
    (0.5, 224, 149, 1.3),
    (0.25, 224, 41, 0.5),
    (1.0, 192, 418, 4.2),  # Table 7
    (1.0, 160, 290, 4.2),
    (1.0, 128, 186, 4.2),
]


@pytest.mark.parametrize("alpha,resolution,macs_m,params_m", PAPER)
def test_totals_match_paper(alpha, resolution, macs_m, params_m):
    macs, params = totals(ModelConfig(alpha, resolution))
    assert abs(macs / 1e6 - macs_m) < 1.0  # the paper rounds (290.68 M is printed as 290)
    assert round(params / 1e6, 1) == params_m


def test_exact_counts_at_1_0_224():
    macs, params = totals(ModelConfig())
    assert macs == 568_740_352
    assert params == 4_210_088  # 864 + 13 depthwise-separable blocks + FC 1024x1000 + 1000


def test_layer_structure_follows_table_1():
    all_layers = layers(ModelConfig())
    kinds = [layer.kind for layer in all_layers]
    assert kinds.count("depthwise") == 13 and kinds.count("pointwise") == 13
    assert [layer.stride for layer in all_layers if layer.kind == "depthwise"] == [
        1,
        2,
        1,
        2,
        1,
        2,
        1,
        1,
        1,
        1,
        1,
        2,
        1,
    ]
    assert all_layers[-2].in_size == 7 and all_layers[-1].in_channels == 1024


def test_batch_scales_macs():
    assert layer_table(ModelConfig(batch=4))["macs"] == 4 * totals(ModelConfig())[0]


@pytest.mark.parametrize("alpha,resolution", [(0.0, 224), (1.5, 224), (1.0, 100), (1.0, 0)])
def test_bad_model_options(alpha, resolution):
    with pytest.raises(ModelSpecError):
        ModelConfig(alpha, resolution)


def test_layer_table_cli_json():
    result = run_cli("model", "--alpha", "0.5", "--resolution", "160", "--json")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    assert isinstance(table["macs"], int) and isinstance(table["params"], int)
    assert (table["macs"], table["params"]) == totals(ModelConfig(0.5, 160))
    assert len(table["layers"]) == 29


def test_layer_table_cli_text():
    result = run_cli("model")
    assert result.returncode == 0, result.stderr
    assert "569 M mult-adds, 4.2 M parameters" in result.stdout
