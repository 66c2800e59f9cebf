"""How TVM's CPU thread pool runs: the thread-count and spinning policy of every command.

Left alone, TVM's runtime takes half the cores on x86 (it assumes hyper-threading). We use every
core this process may use, as a deployed app should, unless TVM_NUM_THREADS says otherwise.

Left alone, TVM's workers also spin ~0.25 s after every parallel kernel before they sleep: after a
model call one core stays busy for a quarter of a second. At 30 calls per second (a camera app)
that is 1.26-1.30 cores of CPU for ~0.5 of work; with TVM_THREAD_POOL_SPIN_COUNT=1000 it is
0.53-0.54, and the latency is unchanged: separate `run` processes at 2 threads in turns, medians of
medians 12.28 ms (default), 10.77 (1000), 10.49 (0) over 8 each, then 11.74 (300000, TVM's default)
and 10.89 (1000) over 14 each, every setting spread over ~9.4-16.6 ms (2-core AMD EPYC, znver3,
2026-11-27). TVM's worker yields the CPU once per spin (sched_yield), so 1000 spins last ~1 ms:
long enough to catch the next kernel of the same call. So we set it unless the user did; the C++
app does the same.

TVM reads both variables when its thread pool starts, so set them before the first call into a
module."""

from __future__ import annotations

import os


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


SPIN_COUNT = 1000  # TVM_THREAD_POOL_SPIN_COUNT: ~1 ms of spinning after a kernel, not ~250


def use_all_cores() -> None:
    """Every available core, unless the user set TVM_NUM_THREADS; workers that soon sleep."""
    os.environ.setdefault("TVM_NUM_THREADS", str(available_cores()))
    _brief_spinning()


def allow_threads(count: int) -> None:
    """Let the thread pool grow to `count` threads (the bench sets its counts per run); workers
    that soon sleep, as `run` and the C++ app have them."""
    os.environ["TVM_NUM_THREADS"] = str(count)
    _brief_spinning()


# TVM's default thread-pool mode (threading::ThreadGroup::kBig): workers pinned one per core.
AFFINITY_BIG_CORES = 1


def run_on_threads(count: int) -> int:
    """Have TVM's pool run parallel kernels on `count` threads (at most the pool's size, see
    `allow_threads`); the number it runs."""
    import tvm

    configure = tvm.get_global_func("runtime.config_threadpool")
    _keeping_affinity(lambda: configure(AFFINITY_BIG_CORES, count))
    return pool_threads()


def pool_threads() -> int:
    """The threads TVM's pool runs for the calling thread (starting the pool if need be)."""
    import tvm

    return _keeping_affinity(tvm.get_global_func("runtime.NumThreads"))


def _keeping_affinity(call):
    """`call()`, with the calling thread's CPU affinity put back after it.

    TVM's pool pins the thread that starts or reconfigures it (`runtime.NumThreads`,
    `runtime.config_threadpool`) to min(TVM_NUM_THREADS, cores) cores, with TVM_NUM_THREADS=1 to
    core 0: the peers timed next in this process and every process it starts would inherit that
    one core (found in the test suite: later subprocesses compiled for one core). `run` and the C++
    app only call the model: at one thread that never starts the pool, and at their default count,
    every core, the thread keeps them all."""
    cores = os.sched_getaffinity(0)
    try:
        return call()
    finally:
        os.sched_setaffinity(0, cores)


def _brief_spinning() -> None:
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", str(SPIN_COUNT))
