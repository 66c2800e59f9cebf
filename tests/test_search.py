"""Search styles on real tuning runs: template records are valid; a task whose candidates are all
rejected fails loudly, naming the task, instead of staying untuned."""

import pytest
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TuningError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.schedules.templates import heuristic_schedule
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import open_log
from tvm_mobilenet.tune.tuner import tune_tasks

from .conftest import tune_on

CONFIG = ModelConfig(0.25, 32)


def depthwise_task(device):
    mod, _ = load_model(CONFIG)
    return next(t for t in extract_tasks(mod, device.target) if t.kind == "depthwise")


@derived_object
class RejectEverything(ms.postproc.PyPostproc):
    """A postprocessor that refuses every candidate, as a broken schedule rule would."""

    def _initialize_with_tune_context(self, context):
        pass

    def apply(self, sch):
        return False

    def clone(self):
        return RejectEverything()


@pytest.mark.slow
def test_template_search_starts_from_the_heuristic_and_writes_valid_records(tmp_path, host_device):
    task = depthwise_task(host_device)
    log = open_log(tmp_path, host_device.label, host_device.target_config, CONFIG.key, create=True)
    family, target = host_device.schedule_family, host_device.target
    report = tune_on(host_device, log, [task], [3], heuristic_first=True)
    records = log.records_of(task.mod)
    assert len(records) == 3 and report.results[0].measured_now == 3
    assert all(max(float(s) for s in r.run_secs) < 1e-2 for r in records)
    heuristic = heuristic_schedule(task.mod, family, target).trace
    assert str(heuristic) in [str(r.trace) for r in records]  # the untuned default was measured
    assert all("SamplePerfectTile" in str(r.trace.as_json()) for r in records)
    default_run = next(r for r in records if str(r.trace) == str(heuristic))
    assert report.results[0].best_seconds <= sum(float(s) for s in default_run.run_secs) / len(
        default_run.run_secs
    )


@pytest.mark.slow
def test_zero_valid_candidates_is_an_error(tmp_path, host_device):
    task = depthwise_task(host_device)
    log = open_log(tmp_path, host_device.label, host_device.target_config, CONFIG.key, create=True)
    space = ms.space_generator.ScheduleFn(
        lambda sch: None, sch_rules=[], postprocs=[RejectEverything()], mutator_probs={}
    )
    small_search = ms.search_strategy.EvolutionarySearch(
        population_size=16, init_min_unmeasured=4, max_fail_count=1
    )
    with pytest.raises(TuningError, match=f"{task.name} .*rejected"):
        tune_tasks(
            [task],
            [4],
            log,
            host_device.target,
            lambda t: space,
            strategy=small_search,
            print_fn=lambda _: None,
        )


def test_a_task_without_a_template_starts_from_our_untuned_rule(tmp_path, host_device):
    """The softmax has no template: its first record is the untuned rule's schedule (what the
    untuned build runs), measured validly, so its tuned result is never slower than the build."""
    from tvm_mobilenet.schedules.untuned import untuned_schedule

    mod, _ = load_model(CONFIG)
    tasks = [t for t in extract_tasks(mod, host_device.target) if t.kind == "other"]
    softmax = next(t for t in tasks if "softmax" in t.name)
    log = open_log(tmp_path, host_device.label, host_device.target_config, CONFIG.key, create=True)
    lines = []
    tune_on(host_device, log, [softmax], [1], "both", True, print_fn=lines.append)
    (record,) = log.valid_records_of(softmax.mod)
    untuned = untuned_schedule(softmax.mod, host_device.schedule_family, host_device.target)
    assert str(record.trace) == str(untuned.trace)
    assert any("the untuned schedule first" in line for line in lines), lines
