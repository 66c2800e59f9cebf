"""How many threads TVM's CPU runtime uses: the thread-count policy of every command.

Left alone, TVM's runtime takes half the cores on x86 (it assumes hyper-threading). We use every
core this process may use, as a deployed app should, unless TVM_NUM_THREADS says otherwise. TVM
reads the variable when its thread pool starts, so set it before the first call into a module.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def use_all_cores() -> None:
    """Every available core, unless the user set TVM_NUM_THREADS."""
    os.environ.setdefault("TVM_NUM_THREADS", str(available_cores()))


def allow_threads(count: int) -> None:
    """Let the thread pool grow to `count` threads (the bench sets its counts per run)."""
    os.environ["TVM_NUM_THREADS"] = str(count)
