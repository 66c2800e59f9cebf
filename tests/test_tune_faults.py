"""Tuning under faults, as a user meets them: Ctrl-C, a second tune on the same log, candidates
that failed in an outage, and kills at random moments. Nothing measured is lost or poisoned."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.errors import TuningError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.schedules.templates import heuristic_schedule
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import META_FILE, RECORD_FILE, open_log
from tvm_mobilenet.tune.measure import make_builder
from tvm_mobilenet.tune.progress import mean_seconds
from tvm_mobilenet.tune.tuner import allocate_trials

from .conftest import LOG_DEVICE, ROOT, TINY_MODEL, assert_usage_error, run_cli, tune_on

CONFIG = ModelConfig(**TINY_MODEL)
TUNE_FLAGS = [
    *("--alpha", str(CONFIG.alpha), "--resolution", str(CONFIG.resolution)),
    *("--target", LOG_DEVICE[0], "--device", LOG_DEVICE[1], "--ops", "depthwise"),
]
HEURISTIC_STARTS = "the untuned schedule first"
STOP_SEC = 30  # a bound for "within seconds" that a loaded 2-core machine still meets


class Tune:
    """`python -m tvm_mobilenet.tune` in the background, its output lines read as they come."""

    def __init__(self, log_dir, trials: int, new_session: bool = False):
        self.log_dir = log_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tvm_mobilenet.tune", *TUNE_FLAGS, *tune_args(trials, log_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=new_session,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read()
                continue
            if text in line:
                return line
        raise AssertionError(f"tune never printed {text!r}")

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def kill(self) -> None:
        """SIGKILL the tune and its workers (as a crash or an out-of-memory kill would)."""
        workers = self.workers()
        for process in [psutil.Process(self.proc.pid), *workers]:
            with contextlib.suppress(psutil.NoSuchProcess):  # ended between listing and kill
                process.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def tune_args(trials: int, log_dir) -> list[str]:
    return ["--trials", str(trials), "--log-dir", str(log_dir)]


def committed_lines(log_dir) -> list[bytes]:
    """The complete lines of the records file as it stands."""
    try:
        data = (log_dir / RECORD_FILE).read_bytes()
    except FileNotFoundError:
        return []
    return data.splitlines(keepends=True)[: data.count(b"\n")]


def open_for_writing(log_dir):
    meta = json.loads((log_dir / META_FILE).read_text())
    return open_log(log_dir, meta["device"], meta["target"], meta["model"], create=True)


def assert_interrupted_cleanly(tune: Tune, before: list[bytes], workers) -> None:
    """Exit 130 within seconds, one line on stderr, every record kept, no worker left."""
    _, err = tune.proc.communicate(timeout=STOP_SEC)
    assert tune.proc.returncode == 130, err
    assert err.splitlines() == [
        "interrupted: every record measured so far is kept; run the same command to resume"
    ], err
    after = committed_lines(tune.log_dir)
    assert after[: len(before)] == before
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    log = open_for_writing(tune.log_dir)
    assert len(log.database) == len(after)


@pytest.fixture
def tune_process(tmp_path):
    started = []

    def start(trials: int, new_session: bool = False) -> Tune:
        tune = Tune(tmp_path / "log", trials, new_session)
        started.append(tune)
        return tune

    yield start
    for tune in started:
        tune.stop()


@pytest.mark.slow
def test_a_second_tune_on_the_log_exits_2_and_ctrl_c_stops_the_first(tune_process):
    """Two terminals, one log: the second tune names the first and leaves; the first, sent
    SIGINT while it measures a task's heuristic schedule, stops within seconds."""
    tune = tune_process(trials=18)  # each task's heuristic schedule, then 9 trials by gain
    tune.wait_for(HEURISTIC_STARTS)
    second = run_cli("tune", *TUNE_FLAGS, *tune_args(18, tune.log_dir))
    assert_usage_error(second, f"is in use by pid {tune.proc.pid}", "--log-dir")
    tune.wait_for(HEURISTIC_STARTS)  # the next task's heuristic schedule is being built now
    time.sleep(1)
    before, workers = committed_lines(tune.log_dir), tune.workers()
    os.kill(tune.proc.pid, signal.SIGINT)
    assert_interrupted_cleanly(tune, before, workers)


@pytest.mark.slow
def test_ctrl_c_during_the_search_to_the_whole_process_group(tune_process):
    """A terminal's Ctrl-C reaches the tune and its measuring workers alike."""
    tune = tune_process(trials=18, new_session=True)
    tune.wait_for("by gain:")  # the heuristics are in the log; the search batch has started
    time.sleep(2)
    before, workers = committed_lines(tune.log_dir), tune.workers()
    os.killpg(tune.proc.pid, signal.SIGINT)
    assert_interrupted_cleanly(tune, before, workers)


@pytest.mark.slow
def test_a_task_whose_records_all_failed_is_tuned_by_the_same_command(tmp_path):
    """An outage (workers that cannot build) fails every candidate of a task; once it is over,
    the same run measures the task afresh, heuristic schedule first: the failures are no trials."""
    device = load_device(*LOG_DEVICE)
    family, target = device.schedule_family, device.target
    mod, _ = load_model(CONFIG)
    task = next(t for t in extract_tasks(mod, target) if t.kind == "depthwise")

    def outage(_module):
        raise ImportError("No module named 'tvm' (the environment is being changed)")

    def tune(builder=None):
        log = open_log(tmp_path, device.label, device.target_config, CONFIG.key, create=True)
        try:
            return tune_on(device, log, [task], [3], heuristic_first=True, builder=builder)
        finally:
            log.close()

    with pytest.raises(TuningError, match=r"No module named 'tvm'.*the same command retries"):
        tune(make_builder(outage))
    failed = committed_lines(tmp_path)
    assert len(failed) == 3  # kept for diagnosis

    report = tune()
    result = report.results[0]
    assert (result.measured_now, result.trials, result.failed_now) == (3, 3, 0)
    log = open_log(tmp_path, device.label, device.target_config, CONFIG.key, create=False)
    assert committed_lines(tmp_path)[:3] == failed and len(log.records_of(task.mod)) == 6
    heuristic = str(heuristic_schedule(task.mod, family, target).trace.as_json())
    (default,) = [r for r in log.valid_records_of(task.mod) if str(r.trace.as_json()) == heuristic]
    assert result.best_seconds == log.best_seconds(task.mod) <= mean_seconds(default.run_secs)


KILLS = 3
KILL_JITTER_SEC = 0.5  # after the record it waits for: in a build, a measurement or a write


def wait_for_records(tune: Tune, count: int, timeout: float = 600) -> bool:
    """Whether the log reached `count` committed records while the tune still ran."""
    deadline = time.monotonic() + timeout
    while tune.proc.poll() is None and time.monotonic() < deadline:
        if len(committed_lines(tune.log_dir)) >= count:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_kills_at_random_moments_lose_nothing(tune_process, tmp_path):
    """SIGKILL the tune (and its workers) at random moments while it measures (the first kill in
    its first batch, the others just after their run's first record, whatever the machine's
    speed): after each kill the log opens and holds every record committed before it; the same
    command then completes with as many valid records as a run never killed."""
    trials = 6  # one candidate (the heuristic schedule) for each of six depthwise tasks
    rng = random.Random(11)
    for kill in range(KILLS):
        start = len(committed_lines(tmp_path / "log"))
        tune = tune_process(trials)
        tune.wait_for("measuring")
        assert wait_for_records(tune, start + min(kill, 1)), "the tune ended before its kill"
        time.sleep(rng.uniform(0, KILL_JITTER_SEC))
        before = committed_lines(tune.log_dir)
        tune.kill()
        open_for_writing(tune.log_dir).close()  # repairs what the kill tore
        assert committed_lines(tune.log_dir)[: len(before)] == before
    result = run_cli("tune", *TUNE_FLAGS, *tune_args(trials, tune.log_dir))
    assert result.returncode == 0, result.stderr
    device = load_device(*LOG_DEVICE)
    mod, _ = load_model(CONFIG)
    tasks = extract_tasks(mod, device.target, "depthwise")
    log = open_log(tune.log_dir, device.label, device.target_config, CONFIG.key, create=False)
    valid = [len(log.valid_records_of(t.mod)) for t in tasks]
    assert valid == allocate_trials(tasks, trials)  # what an uninterrupted run leaves
