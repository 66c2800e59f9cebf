"""x86 templates: every MobileNet depthwise and pointwise shape equals numpy, with the heuristic
knobs and with randomly sampled ones (what tuning explores)."""

import dataclasses
import re

import pytest
import tvm
from tvm import s_tir

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.schedules.cpu import _pixels_per_core, pixel_tile
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.schedules.x86 import AVX2, AVX512

from ..template_tasks import CONFIGS, all_task_ids, extracted_ids, param_id, template_task
from .conftest import check_against_numpy

HOST = load_device("x86")
TASKS = all_task_ids()


def test_every_depthwise_and_pointwise_task_has_a_template():
    for config in CONFIGS:
        assert extracted_ids(HOST, config) == {ident for c, ident in TASKS if c == config}
    kinds = [ident.split("-")[0] for _, ident in TASKS]
    assert kinds.count("depthwise") + kinds.count("pointwise") == 36  # 18 per model


@pytest.mark.parametrize("item", TASKS, ids=param_id)
def test_heuristic_schedule_matches_numpy(item):
    task = template_task(HOST, item)
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", HOST.target, tuning=False)
    assert check_against_numpy(sch.mod, task, HOST.target) < 1e-4


@pytest.mark.parametrize("item", TASKS[::6], ids=param_id)
@pytest.mark.parametrize("seed", [1, 2])
def test_sampled_knobs_match_numpy(item, seed):
    task = template_task(HOST, item)
    sch = s_tir.Schedule(task.mod, seed=seed)
    apply_template(sch, template_kind(task.mod), "x86", HOST.target, tuning=True)
    assert check_against_numpy(sch.mod, task, HOST.target) < 1e-4


@pytest.mark.parametrize("item", TASKS[::5], ids=param_id)
def test_avx2_shapes_match_numpy(item):
    avx2 = load_device("x86", "avx2")
    task = template_task(avx2, item)
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", avx2.target, tuning=False)
    assert check_against_numpy(sch.mod, task, tvm.target.Target(avx2.target_config)) < 1e-4


@pytest.mark.parametrize(
    ("pixels", "channels", "tile"),
    [
        (14 * 14, 512, (6, 2)),  # 196 of 198 pixels useful; a row tile was 5 x 2 and a padded 4 x 2
        (7 * 7, 1024, (6, 2)),  # 49 of 54 useful: 10.9 accumulators at work, 5 x 2 gives 9.8
        (56 * 56, 128, (6, 2)),
        (4 * 4, 256, (6, 2)),  # 16 of 18 useful (10.7) beats 4 x 2 (8)
        (28 * 28, 24, (4, 3)),  # alpha 0.75: 3 vectors of 8 channels, 12 accumulators
        (1, 1024, (1, 4)),  # one pixel: the widest channel tile in the registers
    ],
)
def test_avx2_pixel_tile_keeps_the_most_accumulators_at_work(pixels, channels, tile):
    assert pixel_tile(pixels, channels // AVX2.lanes, AVX2) == tile


@pytest.mark.parametrize(
    ("pixels", "channels", "tile"),
    [
        (112 * 112, 64, (7, 2)),  # at most 2 vectors, 7 columns, pixels or weights outermost
        (56 * 56, 128, (7, 2)),
        (28 * 28, 256, (7, 2)),
        (14 * 14, 512, (7, 2)),  # not 6 x 4: slower in the model, where the weights arrive cold
        (7 * 7, 1024, (7, 2)),
    ],
)
def test_avx512_pixel_tiles(pixels, channels, tile):
    assert pixel_tile(pixels, channels // AVX512.lanes, AVX512) == tile


@pytest.mark.parametrize("item", TASKS[::3], ids=param_id)
def test_avx512_templates_compile_on_any_host(item):
    """AVX-512 code without running it (the host may lack AVX-512); the host's own test above
    runs it where the CPU has it."""
    avx512 = load_device("x86", "avx512")
    task = template_task(avx512, item)
    sch = s_tir.Schedule(task.mod)
    apply_template(sch, template_kind(task.mod), "x86", avx512.target, tuning=False)
    tvm.compile(sch.mod, target=tvm.target.Target(avx512.target_config))


@pytest.mark.parametrize(
    ("pixels", "channels", "cores", "split"),
    [
        (14 * 14, 512, 2, True),  # 98 pixels per core, 7 x 2 tiles either way
        (14 * 14, 512, 4, True),  # 49 per core: 7 x 2
        (14 * 14, 512, 1, False),
        (7 * 7, 1024, 2, False),  # 49 pixels do not halve
        (8 * 8, 512, 2, False),  # 32 per core would need a padded 7-pixel tile, crossing a part
        (4 * 4, 1024, 2, False),  # 8 per core: the same, and 8 of 14 pixel slots at work
    ],
)
def test_avx512_weights_outer_layers_give_each_core_its_pixels(pixels, channels, cores, split):
    params = dataclasses.replace(AVX512, cores=cores)
    assert _pixels_per_core(pixels, channels // AVX512.lanes, params) == split


@pytest.mark.parametrize("cores", [2, 4])
@pytest.mark.parametrize("tuning", [False, True])
def test_per_core_pixels_match_numpy(cores, tuning):
    """The 14x14x512 layer with its pixels split per core (the first split of its trace), for a
    target of `cores` cores whatever this machine has; tuning samples only tiles that divide a
    core's part (a padded one would write the next part's pixels)."""
    item = (CONFIGS[0], "pointwise-1x14x14x512k1x1s1->512")
    task = template_task(HOST, item)
    target = tvm.target.Target({**HOST.target_config, "num-cores": cores})
    sch = s_tir.Schedule(task.mod, seed=cores)
    apply_template(sch, "conv", "x86", target, tuning=tuning)
    trace = str(sch.trace)
    splits = [line for line in trace.splitlines() if "sch.split(" in line]
    assert f"factors=[{cores}, None]" in splits[0]
    columns = re.search(r"sample_categorical\(candidates=\[([\d, ]+)\]", trace).group(1)
    assert all(196 // cores % int(c) == 0 for c in columns.split(","))
    assert check_against_numpy(sch.mod, task, target) < 1e-4
