"""The in-model check: each tuned kernel against its untuned schedule inside the whole model.

The runner measures a candidate alone, called again and again: its weights and inputs stay in
cache. In the model a kernel's weights arrive from L3 or memory and its input from the layer
before, on whichever core computed it, so a record that wins alone can lose in the model
(2-core AMD EPYC, znver4, 2026-11-27, 1 thread: the default run's 7x7x1024 record 1100 us in the
model against 960 for the untuned 6 x 4 tile; the whole tuned module 1-2.6 % slower than the
untuned one). So after the search, a local tune builds the model twice, with the log's records
and without, times every kernel in both in turns (`bench/profile.py`, the VM's instrument), and
writes the kernels that ran faster untuned to `in_model.json` in the log directory; `compile`
gives them their untuned schedule."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import tvm
import tvm_ffi

from tvm_mobilenet.files import write_failed
from tvm_mobilenet.tasks.extract import Task, fuse
from tvm_mobilenet.tune.log import TuningLog

IN_MODEL_FILE = "in_model.json"
MARGIN = 0.03  # untuned must be this much faster: in-model medians move by a few % between runs
ROUNDS = 3  # each module profiled this many times, in turns
CALLS = 15  # model calls per profile


@dataclass
class KernelVerdict:
    name: str
    shape: str
    function_hash: str  # structural hash of the fused function, before scheduling
    tuned_us: float
    untuned_us: float

    @property
    def untuned_wins(self) -> bool:
        return self.untuned_us < self.tuned_us * (1 - MARGIN)


def function_hashes(fused: tvm.IRModule) -> dict[str, str]:
    """Each TIR function's name -> structural hash (the same before scheduling at tune and at
    compile time: both fuse the model with `tasks.extract.fuse`)."""
    return {
        gv.name_hint: str(tvm_ffi.structural_hash(func))
        for gv, func in fused.functions.items()
        if isinstance(func, tvm.tirx.PrimFunc)
    }


def verdicts(
    tuned: dict[str, list[float]],
    untuned: dict[str, list[float]],
    hashes: dict[str, str],
    shapes: dict[str, str],
) -> list[KernelVerdict]:
    """Per tuned kernel (a name in `shapes`): the median of each module's rounds, in µs."""
    return [
        KernelVerdict(
            name,
            shapes[name],
            hashes[name],
            statistics.median(tuned[name]),
            statistics.median(untuned[name]),
        )
        for name in shapes
        if name in tuned and name in untuned and name in hashes
    ]


def untuned_functions(log_dir: Path) -> set[str]:
    """Hashes of the functions the log's in-model check found faster untuned (none without it)."""
    try:
        data = json.loads((log_dir / IN_MODEL_FILE).read_text())
    except (OSError, ValueError):
        return set()
    return {k["function_hash"] for k in data.get("kernels", []) if k.get("untuned_wins")}


def write_verdicts(log_dir: Path, threads: int, found: list[KernelVerdict]) -> None:
    kernels = [{**asdict(v), "untuned_wins": v.untuned_wins} for v in found]
    text = json.dumps(
        {
            "date": date.today().isoformat(),
            "threads": threads,
            "margin": MARGIN,
            "kernels": kernels,
        },
        indent=1,
    )
    path = log_dir / IN_MODEL_FILE
    staging = path.with_name(f".{IN_MODEL_FILE}.tmp")
    try:
        staging.write_text(text + "\n")
        os.replace(staging, path)  # whole or not at all: compile may read it at any time
    except OSError as err:
        raise write_failed(path, "--log-dir", err) from None


def discard_verdicts(log_dir: Path) -> None:
    """Remove the verdicts before a search: they hold for the records they were measured against,
    and a run stopped before its check must not leave them on newer records."""
    try:
        (log_dir / IN_MODEL_FILE).unlink(missing_ok=True)
    except OSError as err:
        raise write_failed(log_dir / IN_MODEL_FILE, "--log-dir", err) from None


def check_in_model(
    mod: tvm.IRModule,
    tasks: list[Task],
    log: TuningLog,
    target: tvm.target.Target,
    schedule_family: str,
    input_shape: tuple[int, ...],
    print_fn: Callable[[str], None] = print,
    strassen: bool = True,
) -> list[KernelVerdict]:
    """Time the model built with `log`'s records and without (both with Strassen kernels or
    both without, as `strassen` says compile will build it), in turns, at every core this
    process may use; write the verdicts to the log directory and return them."""
    from tvm_mobilenet.bench.profile import profile_module
    from tvm_mobilenet.compile.build import build, export, with_input_signature
    from tvm_mobilenet.run.threads import available_cores, use_all_cores

    use_all_cores()
    threads = available_cores()
    discard_verdicts(log.path)  # the build "with the records" must apply every record
    print_fn(f"in-model check: the model with and without the records, {ROUNDS} rounds each")
    shapes = {t.name: f"{t.kind} {t.shape}" for t in tasks if log.best_seconds(t.mod) is not None}
    with target:
        hashes = function_hashes(fuse(mod, target))
    times: list[dict[str, list[float]]] = [{}, {}]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        signed = with_input_signature(mod, input_shape)
        for index, records in enumerate((log, None)):
            executable = build(signed, target, records, schedule_family, strassen)
            paths.append(export(executable, Path(tmp) / f"{index}.so"))
        for _ in range(ROUNDS):
            for path, kernels in zip(paths, times, strict=True):
                for kernel in profile_module(path, threads, CALLS).kernels:
                    kernels.setdefault(kernel.name, []).append(kernel.total_us)
    found = verdicts(times[0], times[1], hashes, shapes)
    write_verdicts(log.path, threads, found)
    for verdict in found:
        if verdict.untuned_wins:
            print_fn(
                f"in-model check: {verdict.shape} runs faster untuned in the model "
                f"({verdict.untuned_us:.0f} vs {verdict.tuned_us:.0f} us): compile uses its "
                "untuned schedule"
            )
    print_fn(
        f"in-model check: {sum(v.untuned_wins for v in found)} of {len(found)} tuned kernels "
        f"faster untuned; written to {log.path / IN_MODEL_FILE}"
    )
    return found
