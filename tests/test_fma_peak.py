"""The bench's FMA peak: a register-only microkernel that does the flops it is credited with, per
thread count (no timing thresholds; the bench's share-of-peak arithmetic on a tiny model is checked
in tests/test_bench.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

from tvm_mobilenet.bench.peak import (
    CHAINS,
    compile_fma_kernel,
    fma_kernel,
    host_target,
    measure_fma_peak,
    percent_of_peak,
    target_lanes,
)
from tvm_mobilenet.devices import load_device


def test_lanes_follow_the_target_vectors():
    assert target_lanes(load_device("x86", "avx2").target) == 8
    assert target_lanes(load_device("x86", "avx512").target) == 16
    assert target_lanes(load_device("arm", "rasp4b").target) == 4


def test_avx2_microkernel_is_register_only_fma():
    target = load_device("x86", "avx2").target
    lib = tvm.compile(tvm.IRModule({"main": fma_kernel(8)}), target=target)
    fmas = [line for line in lib.mod.inspect_source("asm").splitlines() if "vfmadd" in line]
    assert len(fmas) >= CHAINS and len(fmas) % CHAINS == 0
    assert all("%ymm" in line and "(" not in line for line in fmas)  # no memory operand


def test_microkernel_computes_the_credited_chains():
    func, lanes = compile_fma_kernel(host_target(2))
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.0, (64, 16)).astype("float32")
    out = tvm.runtime.tensor(np.zeros((64, 16), "float32"))
    iters, threads = 3, 2
    func(tvm.runtime.tensor(a), out, iters, threads)
    expected = np.zeros((threads, lanes))
    for t in range(threads):
        for chain in range(CHAINS):
            acc = a[t, :lanes].astype(np.float64) + chain
            for _ in range(iters):
                acc = acc * a[t, :lanes] + a[t + 32, :lanes]
            expected[t] += acc
    assert np.allclose(out.numpy()[:threads, :lanes], expected, rtol=1e-5)


def test_measured_peak_per_thread_count_and_its_share():
    peaks = measure_fma_peak([1, 2], seconds=0.0005, bursts=3)
    assert sorted(peaks) == [1, 2]
    for threads, peak in peaks.items():
        assert peak.threads == threads and peak.lanes in (4, 8, 16) and peak.gflops > 0
        assert f"measured at {threads} thread(s)" in peak.describe()
    # a model doing the peak's flops in one second runs at 100 % of it
    assert percent_of_peak(peaks[1].gflops * 1e9, 1000.0, peaks[1]) == pytest.approx(100)
