"""What else ran on this machine's cores while a benchmark ran.

A 1-minute load average flags a machine as busy on the benchmark's own load (1.0 on 2 cores while it
runs) and on jobs that ended a minute before. The CPU time the kernel counts for all processes
(/proc/stat) minus this process's own (and its waited-for children's) over the run is the CPU the
others took: the interference the figures suffered."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Others' share of all cores above which a run is flagged: ~1/5 of one core on a 2-core machine.
BUSY_SHARE = 0.10


def _busy_seconds() -> float | None:
    """CPU seconds all processes have run (user, nice, system, irq, softirq, steal), or None."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class OthersCpu:
    """Started before a run; `note()` after it says how much CPU other processes took meanwhile."""

    busy: float | None = field(default_factory=_busy_seconds)
    own: float = field(default_factory=_own_seconds)
    wall: float = field(default_factory=time.monotonic)
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    def share(self) -> float | None:
        """Other processes' CPU time over the run / (its wall time x cores); None without /proc."""
        busy = _busy_seconds()
        if busy is None or self.busy is None:
            return None
        others = (busy - self.busy) - (_own_seconds() - self.own)
        elapsed = max(time.monotonic() - self.wall, 1e-9)
        return max(others, 0.0) / (elapsed * (os.cpu_count() or 1))

    def note(self) -> str:
        cores = os.cpu_count()
        load = f"load average (1 min) {self.load:.2f} before, {os.getloadavg()[0]:.2f} after"
        share = self.share()
        if share is None:
            return f"{load} (this run included)"
        note = f"other processes took {share:.0%} of the {cores} cores during the run ({load})"
        if share > BUSY_SHARE:
            note += "; the machine was busy: rerun on a quiet machine for figures to quote"
        return note
