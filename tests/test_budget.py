"""The tuning budget: an equal first share per task, the rest spent a batch at a time by gain;
the cost model learns from every measured candidate."""

import tvm

from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.catalogue import find_logs
from tvm_mobilenet.tune.log import open_log
from tvm_mobilenet.tune.tuner import make_cost_model, most_promising, split_budget

from .conftest import tune_on

MOBILENET = ModelConfig(1.0, 224)
TINY = ModelConfig(0.25, 32)


def shipped_log(mcpu: str):
    """A committed log, replayed: its records are data, whatever machine runs the test."""
    (entry,) = [e for e in find_logs() if e.origin == "shipped" and e.target["mcpu"] == mcpu]
    target = tvm.target.Target(entry.target)
    tasks = extract_tasks(load_model(MOBILENET)[0], target)
    return open_log(entry.path, entry.device, entry.target, MOBILENET.key, create=False), tasks


def test_half_the_default_budget_is_shared_equally_the_rest_goes_by_gain():
    tasks = extract_tasks(load_model(MOBILENET)[0], tvm.target.Target({"kind": "llvm"}))
    assert len(tasks) == 22  # the classifier is not tuned (tasks/extract.tunable)
    first, by_gain = split_budget(tasks, 460)
    assert sum(first) == 230 and set(first) == {10, 11} and by_gain == 230
    # a small budget: first every task's heuristic schedule, then the rest by gain
    assert split_budget(tasks, 30) == ([1] * 22, 8)
    first, by_gain = split_budget(tasks, 5)  # fewer trials than tasks: the costliest five
    assert sorted(first) == [0] * 17 + [1] * 5 and by_gain == 0


def test_the_next_batch_goes_to_the_largest_share_of_model_time_until_it_stalls():
    log, tasks = shipped_log("znver4")
    everyone = list(range(len(tasks)))
    first, share = most_promising(log, tasks, everyone, gains={})
    # 446 us: the 7x7x1024 pointwise layer is 30 % of the tuned kernel time (1.47 ms; the wide 1x1
    # layers run as Strassen kernels and have no records: tasks/strassen.py)
    assert (tasks[first].kind, tasks[first].shape, tasks[first].weight) == (
        "pointwise",
        "1x7x7x1024 k1x1 s1 ->1024",
        1,
    )
    assert 0.29 < share < 0.32
    # Its last batch gained nothing: 2 % of its 0.45 ms promises less than 10 % of the next largest
    # layer's 0.23 ms (the 112x112x32 pointwise), whose gain is not known here.
    second, share = most_promising(log, tasks, everyone, gains={first: 0.0})
    assert tasks[second].shape == "1x112x112x32 k1x1 s1 ->64" and 0.14 < share < 0.17
    # A task without a valid record has nothing to gain from yet.
    assert most_promising(log, tasks, [], gains={}) is None


def test_a_tiny_tune_spends_exactly_its_budget_and_resumes_to_nothing(tmp_path, host_device):
    mod, _ = load_model(TINY)
    tasks = [t for t in extract_tasks(mod, host_device.target) if t.kind == "depthwise"][:2]
    log = open_log(tmp_path, host_device.label, host_device.target_config, TINY.key, create=True)

    def tune(lines, cost_model=None):
        return tune_on(
            host_device,
            log,
            tasks,
            [1, 1],
            "both",
            heuristic_first=True,
            print_fn=lines.append,
            by_gain=3,
            cost_model=cost_model,
        )

    lines, cost_model = [], make_cost_model()
    report = tune(lines, cost_model)
    valid = [len(log.valid_records_of(t.mod)) for t in tasks]
    assert sum(valid) == 5 and min(valid) >= 1
    assert [r.trials for r in report.results] == valid
    assert report.measured_now == 5
    assert sum("by gain:" in line for line in lines) >= 1
    # XGBoost learned from all five, the two heuristic schedules measured before any search too
    assert sum(len(group.costs) for group in cost_model.data.values()) == 5
    again = []
    assert tune(again).measured_now == 0
    assert not any("by gain:" in line for line in again)
    log.close()
