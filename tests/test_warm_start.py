"""Warm start: another device's best schedules are measured here, never used unmeasured; a log of
another target family is refused."""

from __future__ import annotations

import json

import pytest
from tvm.s_tir import meta_schedule as ms

from tests.conftest import LOG_DEVICE, TINY_MODEL, assert_usage_error, run_cli
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.errors import WarmStartError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet
from tvm_mobilenet.tune.catalogue import LogEntry
from tvm_mobilenet.tune.log import META_FILE, open_log
from tvm_mobilenet.tune.warm_start import _nearness, check_warm_start_dir, vector_bits

TINY = BuiltinMobileNet(ModelConfig(**TINY_MODEL))
FOREIGN_SECS = 123.0  # the foreign log's "times": a record copied unmeasured would carry it


def _arm_log(path):
    """An empty log made for an ARM board (its identity file is all a warm start reads first)."""
    device = load_device("arm", "rasp4b")
    path.mkdir(parents=True)
    meta = {"device": device.label, "target": device.target_config, "model": TINY.key}
    (path / META_FILE).write_text(json.dumps(meta))
    return path


def test_a_log_of_another_target_family_is_refused_in_one_line(tmp_path):
    arm = _arm_log(tmp_path / "arm_log")
    here = tmp_path / "here"
    result = run_cli(
        "tune",
        *("--alpha", "0.25", "--resolution", "32", "--log-dir", str(here)),
        *("--warm-start", str(arm)),
    )
    assert_usage_error(result, "target 'arm'", "'x86'", "tvm-mobilenet logs")
    assert not here.exists()  # refused before anything was written


def test_a_directory_that_is_no_log_is_refused(tmp_path):
    with pytest.raises(WarmStartError, match="not a tuning log"):
        check_warm_start_dir(tmp_path, "x86")
    with pytest.raises(WarmStartError, match="target 'arm'"):
        check_warm_start_dir(_arm_log(tmp_path / "arm"), "x86")


def test_the_nearest_log_has_the_closest_vector_width_then_the_same_model():
    assert vector_bits(load_device("x86", "avx2").target_config) == 256
    assert vector_bits(load_device("x86", "avx512").target_config) == 512
    assert vector_bits(load_device("arm", "rasp4b").target_config) == 128

    def entry(device, model, valid=10):
        spec = load_device("x86", device)
        return LogEntry(
            spec.log_name, "shipped", spec.label, spec.target_config, model, valid, valid, ""
        )

    other_model = BuiltinMobileNet(ModelConfig(alpha=0.5, resolution=64)).key
    here = {**load_device("x86", "avx2").target_config, "mcpu": "znver3"}  # another AVX2 CPU
    logs = [entry("avx512", TINY.key, 400), entry("avx2", other_model), entry("avx2", TINY.key)]
    ranked = sorted(logs, key=lambda e: _nearness(e, here, TINY.key))
    assert [(e.device, e.model) for e in ranked] == [
        ("x86/avx2", TINY.key),
        ("x86/avx2", other_model),
        ("x86/avx512", TINY.key),
    ]


def _foreign_log(path, device, tasks):
    """A log of `device` whose record for each task is a schedule the x86 template would not pick
    here (the ARM template's register shapes, valid x86 code), with made-up times."""
    from tvm_mobilenet.schedules.templates import heuristic_schedule

    log = open_log(path, device.label, device.target_config, TINY.key, create=True)
    traces = {}
    for task in tasks:
        sch = heuristic_schedule(task.mod, "arm_cpu", device.target)
        workload = log.commit_workload(task.mod)
        args_info = ms.arg_info.ArgInfo.from_prim_func(sch.mod["main"])
        record = ms.database.TuningRecord(
            sch.trace, workload, [FOREIGN_SECS], device.target, args_info
        )
        log.database.commit_tuning_record(record)
        traces[task.name] = str(sch.trace.as_json())
    log.close()
    return traces


def _records(log_dir, device, tasks):
    log = open_log(log_dir, device.label, device.target_config, TINY.key, create=False)
    try:
        return {task.name: log.records_of(task.mod) for task in tasks}
    finally:
        log.close()


@pytest.mark.slow
def test_warm_start_measures_another_devices_schedules_here(tmp_path):
    from tvm_mobilenet.tasks.extract import extract_tasks
    from tvm_mobilenet.tune.api import TuneArgs, tune
    from tvm_mobilenet.tune.progress import mean_seconds

    foreign_device, here = load_device(*LOG_DEVICE), load_device("x86")  # x86/avx2 -> x86/host
    tasks = extract_tasks(TINY.module(), here.target, "depthwise")
    foreign = _foreign_log(tmp_path / "foreign", foreign_device, tasks)
    log_dir, lines = tmp_path / "here", []
    # 2 trials: the 2 costliest tasks get one each, the warm-start schedule (no heuristic in the
    # generated space)
    common = {"model": TINY, "device": here, "log_dir": log_dir, "trials": 2, "ops": "depthwise"}
    tune(TuneArgs(**common, search="auto", warm_start=tmp_path / "foreign"), lines.append)
    assert any(line.startswith("warm start from") for line in lines), lines
    warm = {name: recs for name, recs in _records(log_dir, here, tasks).items() if recs}
    assert len(warm) == 2
    for name, records in warm.items():
        (record,) = records
        assert str(record.trace.as_json()) == foreign[name]  # the foreign schedule...
        seconds = mean_seconds(record.run_secs)
        assert seconds is not None and seconds != FOREIGN_SECS  # ...measured here
        assert record.target.attrs["mcpu"] == here.target_config["mcpu"]
    assert json.loads((log_dir / META_FILE).read_text())["device"] == here.label

    # The same tasks with the template: its heuristic (the untuned build's schedule) is measured
    # too, and the task's best record is never slower than it.
    tune(TuneArgs(**common, search="template"), lines.append)
    for name, records in _records(log_dir, here, tasks).items():
        if name not in warm:
            continue
        assert len(records) == 2
        heuristic = next(r for r in records if str(r.trace.as_json()) != foreign[name])
        best = min(mean_seconds(r.run_secs) for r in records)
        assert best <= mean_seconds(heuristic.run_secs)
        assert all(mean_seconds(r.run_secs) != FOREIGN_SECS for r in records)
