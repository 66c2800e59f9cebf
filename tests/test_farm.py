"""A real RPC tracker with two emulated aarch64 devices on 127.0.0.1: registration, errors, a
cross-compiled .so verified on a device, and RPC tuning that survives a device killed mid-run.
Emulated timings are never asserted: they are not performance. The farm's own safety (bounded
waits, pid files, bind addresses) is tested without emulation."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tvm_mobilenet.model import reference
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model

from .conftest import assert_usage_error, run_cli, tune_on
from .emulated import free_port, require_emulation_setup

CONFIG = ModelConfig(0.25, 32)
KEY = "test-rasp4b"
MODEL_FLAGS = ["--alpha", "0.25", "--resolution", "32"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A tracker and two emulated devices under KEY, stopped (process groups and all) at the end."""
    require_emulation_setup()
    from tvm_mobilenet.farm import tracker as rpc_farm

    state_dir = tmp_path_factory.mktemp("farm_state")
    tracker, _ = rpc_farm.start_tracker(port=free_port(), state_dir=state_dir)
    try:
        devices = rpc_farm.start_emulated_devices(tracker, KEY, count=2, state_dir=state_dir)
        yield {"tracker": tracker, "devices": devices, "state_dir": state_dir}
    finally:
        rpc_farm.stop(state_dir)


def farm_env(farm) -> dict:
    return {"TVM_MOBILENET_FARM_STATE": str(farm["state_dir"])}


def test_two_emulated_devices_register(farm):
    result = run_cli(
        "farm", "status", "--tracker", str(farm["tracker"]), env=farm_env(farm), timeout=120
    )
    assert result.returncode == 0, result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith(KEY))
    assert row[1:] == ["2", "2", "0", "0"]  # devices, free, busy, queued
    assert all(device.alive() for device in farm["devices"])


def test_rpc_errors_are_one_line(farm):
    tune = ["tune", "--target", "arm", "--device", "rasp4b", *MODEL_FLAGS, "--trials", "2"]
    no_tracker_env = {"TVM_TRACKER_HOST": "", "TVM_TRACKER_PORT": ""}
    assert_usage_error(run_cli(*tune, env=no_tracker_env), "python -m tvm_mobilenet.farm tracker")
    assert_usage_error(
        run_cli(*tune, "--rpc-tracker", f"127.0.0.1:{free_port()}"), "no RPC tracker answers"
    )
    assert_usage_error(
        run_cli(*tune, "--rpc-tracker", str(farm["tracker"]), "--rpc-key", "nobody"),
        "no device under key 'nobody'",
        "farm emulate",
    )


@pytest.mark.slow
def test_cross_compiled_so_verified_and_run_on_device(farm, tmp_path):
    output = tmp_path / "mobilenet_rasp4b.so"
    rpc = ["--rpc-tracker", str(farm["tracker"]), "--rpc-key", KEY]
    result = run_cli(
        "compile",
        "--target",
        "arm",
        "--device",
        "rasp4b",
        *MODEL_FLAGS,
        "--no-log",
        "-o",
        str(output),
        *rpc,
        env=farm_env(farm),
    )
    assert result.returncode == 0, result.stderr
    error = float(
        re.search(
            r"verified against .* on a '[^']+' device.*: max abs error (\S+)", result.stdout
        ).group(1)
    )
    assert error <= 1e-4 and output.exists()
    assert output.read_bytes()[18] == 0xB7  # ELF e_machine: AArch64

    probs = tmp_path / "probs.npy"
    result = run_cli(
        "run", str(output), *rpc, "--repeat", "1", "--output", str(probs), env=farm_env(farm)
    )
    assert result.returncode == 0, result.stderr
    assert "emulated: the latency is not performance" in result.stdout
    _, weights = load_model(CONFIG)
    expected = reference.forward(CONFIG, weights, reference.sample_input(CONFIG))
    assert np.max(np.abs(np.load(probs) - expected)) <= 1e-4


def _group_size(pgid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[2]) == pgid:
                    count += 1
        except (OSError, ValueError, IndexError):
            continue
    return count


def _kill_when_busy(device, stop: threading.Event, killed: list) -> None:
    """SIGKILL the device's process group once it serves a session (a forked child appears)."""
    idle = _group_size(device.pid)
    while not stop.wait(0.05):
        if _group_size(device.pid) > idle:
            os.killpg(device.pid, signal.SIGKILL)
            killed.append(time.monotonic())
            return


@pytest.mark.slow
def test_rpc_tuning_survives_a_device_killed_mid_run(farm, tmp_path):
    from tvm_mobilenet.compile.cross import cross_compiler
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.tasks.extract import extract_tasks
    from tvm_mobilenet.tune.log import open_log
    from tvm_mobilenet.tune.measure import RpcSettings, cross_export, make_builder, make_runner

    trials = 4
    device = load_device("arm", "rasp4b")
    mod, _ = load_model(CONFIG)
    task = next(t for t in extract_tasks(mod, device.target) if t.kind == "pointwise")
    log_dir = tmp_path / "log"

    def tune_once():
        log = open_log(log_dir, device.label, device.target_config, CONFIG.key, create=True)
        builder = make_builder(cross_export(cross_compiler(device)))
        runner = make_runner(RpcSettings(farm["tracker"], KEY, timeout_sec=45))
        report = tune_on(device, log, [task], [trials], "auto", builder=builder, runner=runner)
        return report, log

    # Step 1. Tune over both devices; one dies while it measures a candidate.
    victim = farm["devices"][0]
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_when_busy, args=(victim, stop, killed), daemon=True)
    watcher.start()
    try:
        report, log = tune_once()
    finally:
        stop.set()
        watcher.join(5)
    assert killed, "the victim device never received a candidate"
    assert not victim.alive()
    # Every candidate is a record (the dead device's one as a failure, which is no trial); the
    # survivor measured the rest. A kill that lands while the session is being set up costs no
    # candidate (the request goes to the survivor), so `failed` may be 0.
    failed = report.failed_now
    assert report.measured_now == trials
    assert len(log.records_of(task.mod)) == trials
    assert len(log.valid_records_of(task.mod)) == report.results[0].trials == trials - failed
    assert report.results[0].best_seconds is not None

    # Step 2. The same run again resumes: it measures what the failures left undone, and loses
    # nothing.
    log.close()  # one writer per log, in this process too
    again, log = tune_once()
    assert again.measured_now == failed
    assert len(log.valid_records_of(task.mod)) == trials
    assert len(log.records_of(task.mod)) == trials + failed


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a stuck tracker, a wrong service)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_silent_tracker_port_is_an_error_within_seconds(silent_port):
    from tvm_mobilenet.errors import FarmUnavailableError
    from tvm_mobilenet.farm.tracker import QUERY_TIMEOUT_SEC, Tracker, query

    start = time.monotonic()
    with pytest.raises(FarmUnavailableError, match="answered as an RPC tracker within"):
        query(Tracker("127.0.0.1", silent_port))
    assert time.monotonic() - start < 2 * QUERY_TIMEOUT_SEC  # 10 s
    address = f"127.0.0.1:{silent_port}"
    assert_usage_error(run_cli("farm", "status", "--tracker", address), "within")
    tune = ["tune", "--target", "arm", "--device", "rasp4b", *MODEL_FLAGS, "--rpc-tracker", address]
    assert_usage_error(run_cli(*tune), "answered as an RPC tracker")


def test_stop_leaves_alone_a_process_the_farm_did_not_start(tmp_path):
    """A pid file outlives its process (a reboot, a crash); its pid now names something else."""
    from tvm_mobilenet.farm.tracker import stop

    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        pid_file = tmp_path / "tracker-9190.pid.json"
        pid_file.write_text(
            json.dumps(
                {
                    "role": "tracker",
                    "pid": stranger.pid,
                    "name": "tracker-9190",
                    "log": str(tmp_path / "tracker-9190.log"),
                    "key": None,
                    "started": time.time() - 3600,  # the farm's tracker started an hour ago
                    "command": [sys.executable, "-m", "tvm.exec.rpc_tracker"],
                }
            )
        )
        result = run_cli("farm", "--state-dir", str(tmp_path), "stop")
        assert result.returncode == 0, result.stderr
        assert "stopped 0 process(es)" in result.stdout and "left alone" in result.stdout
        assert stranger.poll() is None and not pid_file.exists()
        assert stop(tmp_path) == ([], [])  # nothing left to stop
    finally:
        stranger.kill()
        stranger.wait()


def test_binding_beyond_loopback_needs_a_flag(tmp_path):
    from tvm_mobilenet.farm.tracker import check_bind_address

    result = run_cli(
        "farm", "--state-dir", str(tmp_path), "tracker", "--host", "0.0.0.0", "--port", "9"
    )
    assert_usage_error(result, "--host 0.0.0.0", "run any code", "--allow-remote")
    assert not list(tmp_path.glob("*.pid.json"))
    check_bind_address("127.0.0.1", allow_remote=False)
    check_bind_address("localhost", allow_remote=False)
    with pytest.warns(UserWarning, match="run any code they are sent"):
        check_bind_address("0.0.0.0", allow_remote=True)
