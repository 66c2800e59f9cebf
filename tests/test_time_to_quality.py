"""Time to quality: checkpoints from a recorded trace, log prefixes, and the 1.2x rule."""

import shutil

import pytest

from tvm_mobilenet.bench.time_to_quality import (
    Checkpoint,
    QualityReport,
    checkpoints_of,
    log_prefix,
    trace_tuning,
)
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.errors import TuningLogError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet
from tvm_mobilenet.tune.api import TuneArgs
from tvm_mobilenet.tune.log import RECORD_FILE, open_log

from .conftest import LOG_DEVICE, TINY_MODEL

FIXTURE_MODEL = ModelConfig(**TINY_MODEL)


def test_checkpoints_take_the_records_logged_by_each_time():
    trace = [(0.0, 0), (10.0, 16), (70.0, 32), (130.0, 48)]
    checkpoints = checkpoints_of(trace, 60.0)
    assert [(c.seconds, c.records) for c in checkpoints] == [
        (0.0, 0),
        (60.0, 16),
        (120.0, 32),
        (130.0, 48),
    ]


def test_log_prefix_is_a_valid_log_with_the_first_records(tmp_path, tiny_log):
    prefix = log_prefix(tiny_log, 2, tmp_path / "prefix")
    device = load_device(*LOG_DEVICE)
    log = open_log(prefix, device.label, device.target_config, FIXTURE_MODEL.key, create=False)
    assert len(log.database.get_all_tuning_records()) == 2
    first_two = (tiny_log / RECORD_FILE).read_text().splitlines()[:2]
    assert (prefix / RECORD_FILE).read_text().splitlines() == first_two


def test_time_to_quality_is_the_first_checkpoint_within_1_2x_of_the_final():
    medians = [9.0, 7.9, 6.9, 6.4, 6.0]  # 1.2 x 6.0 = 7.2: the third checkpoint is the first within
    report = QualityReport(
        [Checkpoint(60.0 * i, 16 * i, [m]) for i, m in enumerate(medians)], threads=2
    )
    assert report.final_ms == 6.0
    assert report.time_to_quality().seconds == 120.0


def test_tracing_refuses_a_log_that_already_has_records(tmp_path, tiny_log):
    log_dir = tmp_path / "log"
    shutil.copytree(tiny_log, log_dir)
    args = TuneArgs(
        model=BuiltinMobileNet(FIXTURE_MODEL), device=load_device(*LOG_DEVICE), log_dir=log_dir
    )
    with pytest.raises(TuningLogError, match="empty log"):
        trace_tuning(args, tmp_path / "trace.json")
