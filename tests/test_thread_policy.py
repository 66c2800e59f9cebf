"""The TVM thread-pool policy of `run`, the bench and the C++ app (tvm_mobilenet/run/threads.py):
every core, and workers that sleep soon after a call instead of spinning for a quarter second."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# In a fresh process: the policy (or none), one 2-thread parallel kernel, then the CPU time the
# process burns while its main thread sleeps 0.3 s (the workers' spinning after the call).
PROBE = """
import json, os, sys, time
if sys.argv[1] == "policy":
    from tvm_mobilenet.run.threads import use_all_cores
    use_all_cores()
import numpy as np, tvm
from tvm_mobilenet.bench.peak import compile_fma_kernel, host_target
func, _ = compile_fma_kernel(host_target(2))
a = tvm.runtime.tensor(np.full((64, 16), 0.5, "float32"))
out = tvm.runtime.tensor(np.zeros((64, 16), "float32"))
func(a, out, 1000, 2)
start = time.process_time()
time.sleep(0.3)
print(json.dumps({"burnt": time.process_time() - start,
                  "spin": os.environ.get("TVM_THREAD_POOL_SPIN_COUNT")}))
"""


def _run(script: str, mode: str, env: dict[str, str]) -> dict:
    """`script` in a fresh Python process with `mode` as its argument: its last line, as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", script, mode],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _probe(mode: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TVM_THREAD_POOL")}
    return _run(PROBE, mode, {**environ, "TVM_NUM_THREADS": "2", **env})


def test_workers_sleep_soon_after_a_call_and_a_users_setting_is_kept():
    stock = _probe("stock")  # TVM's own default: a worker spins on after the call
    ours = _probe("policy")
    assert stock["spin"] is None and stock["burnt"] > 0.05
    assert ours["spin"] == "1000" and ours["burnt"] < 0.05
    assert _probe("policy", TVM_THREAD_POOL_SPIN_COUNT="7")["spin"] == "7"


def test_the_cpp_app_sets_the_same_spin_count_without_overriding_the_user():
    source = (ROOT / "tvm_mobilenet" / "run" / "cpp_app" / "mobilenet_app.cc").read_text()
    from tvm_mobilenet.run.threads import SPIN_COUNT

    assert f'setenv("TVM_THREAD_POOL_SPIN_COUNT", "{SPIN_COUNT}", /*overwrite=*/0)' in source


# In a fresh process at TVM_NUM_THREADS=1: the calling thread's cores after starting TVM's pool
# with runtime.NumThreads ("raw") or through run/threads.py, then after setting the count to 1.
PIN_PROBE = """
import json, os, sys
import tvm
from tvm_mobilenet.run.threads import pool_threads, run_on_threads
before = sorted(os.sched_getaffinity(0))
if sys.argv[1] == "raw":
    tvm.get_global_func("runtime.NumThreads")()
else:
    pool_threads()
started = sorted(os.sched_getaffinity(0))
run_on_threads(1)
print(json.dumps({"before": before, "started": started, "set": sorted(os.sched_getaffinity(0))}))
"""


def _pin_probe(mode: str) -> dict:
    return _run(PIN_PROBE, mode, {**os.environ, "TVM_NUM_THREADS": "1"})


def test_starting_and_setting_the_pool_leave_the_calling_thread_free_to_move():
    """TVM pins the thread that starts or reconfigures its pool to TVM_NUM_THREADS cores, core 0 at
    1, and the bench's processes would inherit it: ours puts the thread's cores back."""
    raw, ours = _pin_probe("raw"), _pin_probe("ours")
    if len(raw["before"]) > 1:  # with one core there is nothing to see
        assert len(raw["started"]) == 1
    assert ours["started"] == ours["set"] == ours["before"]
