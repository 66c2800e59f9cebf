"""`bench --profile`: each kernel's time inside the whole model, slowest first.

The Relax VM calls an instrument before and after every call instruction
(`VirtualMachine.set_instrument`; TVM 0.27's VM has no `profile=True`); the time between the two is
that kernel's time in the model, its weights and inputs as cold or warm as the model leaves them.
The instrument is Python, so each call gains a few microseconds: the table ranks kernels and the
line "whole model" (timed without the instrument) is the truth for the total.

With `alone`, each kernel is also timed by itself on copies of the arguments it got in the model,
called again and again (warm caches): the difference to its time in the model is what the model
around it costs, mostly weights arriving from memory and activations another core wrote. On a
2-core AMD EPYC (znver4, 2026-11-27, 1.0/224, 1 thread) that was 0.55-0.8 ms of 10.0-10.3:
pointwise 345-560 us (their weights), depthwise 73-181, the classifier 85-106, the layout 18-34.

It found the fixed cost of every untuned build (2-core AMD EPYC, znver3, 2026-11-26, 0.25/128 at
1 thread): DLight's softmax 7.7 ms of 8.8, then the classifier (schedules/cpu_untuned.py)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from tvm_mobilenet.tasks.blocks import STRASSEN_SUFFIX

VM_BUILTIN = "vm.builtin."
KINDS_BY_NAME = (
    ("matmul", "classifier"),
    ("dense", "classifier"),
    ("mean", "pooling"),
    ("pool", "pooling"),
    ("softmax", "softmax"),
    ("transpose", "layout"),
    ("layout", "layout"),
)


@dataclass
class KernelTime:
    """One kernel: its calls per model call and the median per model call of their summed time."""

    name: str
    kind: str  # depthwise, pointwise, conv, classifier, pooling, softmax, layout, other
    shape: str  # the first argument's shape -> the output's
    calls: int = 0
    samples_us: list[float] = field(default_factory=list, repr=False)
    alone_us: float | None = None  # its calls' time when called by itself, warm (`alone`)

    @property
    def total_us(self) -> float:
        return statistics.median(self.samples_us) if self.samples_us else 0.0

    def as_dict(self) -> dict:
        keys = ("name", "kind", "shape", "calls", "total_us", "alone_us")
        return {k: getattr(self, k) for k in keys}


@dataclass
class KernelProfile:
    threads: int
    kernels: list[KernelTime]  # slowest first
    whole_us: float  # median model call without the instrument

    def by_kind(self) -> list[tuple[str, int, float]]:
        """(kind, calls, us) summed over kernels, slowest first."""
        totals: dict[str, list] = {}
        for kernel in self.kernels:
            entry = totals.setdefault(kernel.kind, [0, 0.0])
            entry[0] += kernel.calls
            entry[1] += kernel.total_us
        return sorted(((k, c, us) for k, (c, us) in totals.items()), key=lambda t: -t[2])

    def model_cost_by_kind(self) -> list[tuple[str, float]]:
        """(kind, in-model us - alone us) summed over kernels, largest first."""
        totals: dict[str, float] = {}
        for kernel in self.kernels:
            if kernel.alone_us is not None:
                cost = kernel.total_us - kernel.alone_us
                totals[kernel.kind] = totals.get(kernel.kind, 0.0) + cost
        return sorted(totals.items(), key=lambda t: -t[1])

    def as_dict(self) -> dict:
        return {
            "threads": self.threads,
            "whole_model_us": self.whole_us,
            "kernels": [kernel.as_dict() for kernel in self.kernels],
        }


def kernel_kind(name: str, shapes: list[tuple[int, ...]]) -> str:
    """A kernel's kind from its name and its arguments' shapes (data, weight, ..., out)."""
    if name.endswith(STRASSEN_SUFFIX):  # its weight is [7, O/2/T, I/2, T] (schedules/strassen.py)
        return "pointwise"
    if "conv2d" in name and len(shapes) > 1:
        weight = shapes[1]
        if len(weight) == 5:  # packed pointwise [O/B, 1, 1, I, B] (tasks/weight_packing.py)
            return "pointwise"
        if len(weight) == 6:  # packed for an int8 dot intrinsic [O/L, KH, KW, I/D, L, D]
            return "pointwise" if weight[1] == weight[2] == 1 else "conv"
        kh, kw, i, o = weight  # HWIO; depthwise HWOI with O = 1
        if o == 1 or i == 1:
            return "depthwise"
        return "pointwise" if kh == kw == 1 else "conv"
    return next((kind for word, kind in KINDS_BY_NAME if word in name), "other")


def model_call(path: Path, threads: int):
    """(model, call): our .so loaded at `threads` threads (TVM's pool must allow them, see
    run/threads.py) and a function that runs it once on the fixed input, taken in place as the
    bench's ours takes it (bench/peers/ours.py). Refilling a tensor with `copyfrom` before each
    call cost 0.2 ms at 1.0/224 (after a call its source and target come from memory), which the
    "whole model" row then showed as time outside the kernels."""
    import tvm

    from tvm_mobilenet.bench.harness import aligned
    from tvm_mobilenet.model.reference import input_for
    from tvm_mobilenet.run.runtime import LoadedModel
    from tvm_mobilenet.run.threads import run_on_threads

    model = LoadedModel(path)
    run_on_threads(threads)  # as the bench's ours
    data = aligned(input_for(model.input_shape, model.input_dtype))
    tensor = tvm.runtime.from_dlpack(data)
    main = model.vm["main"]

    def call():
        return main(tensor)

    return model, call


def profile_module(
    path: Path, threads: int, repeat: int = 20, alone: bool = False
) -> KernelProfile:
    """Profile our .so at `threads` threads; with `alone`, also time each kernel by itself."""
    model, call = model_call(path, threads)
    for _ in range(2):
        call()
    whole = [_timed(call) for _ in range(repeat)]
    alone_us = _alone_times(model, call, repeat) if alone else {}
    timed_call = kernel_calls(model.vm, call)
    rounds = [timed_call() for _ in range(repeat)]
    kernels: dict[str, KernelTime] = {}
    for symbol, kind, shape, _ in rounds[0]:
        kernels.setdefault(symbol, KernelTime(symbol, kind, shape)).calls += 1
    for calls in rounds:
        sums: dict[str, float] = {}
        for symbol, _, _, us in calls:
            sums[symbol] = sums.get(symbol, 0.0) + us
        for symbol, us in sums.items():
            kernels[symbol].samples_us.append(us)
    for symbol, us in alone_us.items():
        kernels[symbol].alone_us = us * kernels[symbol].calls
    ordered = sorted(kernels.values(), key=lambda k: -k.total_us)
    return KernelProfile(threads, ordered, statistics.median(whole))


def _alone_times(model, call, repeat: int) -> dict[str, float]:
    """Median us of one call of each kernel by itself, on copies of the arguments its first call
    in the model got (the output buffers' contents do not matter), called `repeat` x 10 times."""
    import tvm

    first_args: dict[str, list] = {}

    def keep(_func, symbol, before, _ret, *args):
        symbol = str(symbol)
        if before and not symbol.startswith(VM_BUILTIN) and symbol not in first_args:
            first_args[symbol] = [_copy(arg) for arg in args]
        return 0

    model.vm.set_instrument(keep)
    call()
    model.vm.set_instrument(lambda *_: 0)
    times = {}
    for symbol, args in first_args.items():
        timer = _defining_module(model.library, symbol).time_evaluator(
            symbol, tvm.cpu(), number=10, repeat=repeat
        )
        times[symbol] = statistics.median(timer(*args).results) * 1e6
    return times


def _copy(arg):
    import tvm

    return tvm.runtime.tensor(arg.numpy()) if hasattr(arg, "numpy") else arg


def _defining_module(module, symbol: str):
    """The module among `module` and its imports that defines `symbol` (the VM's executable
    imports the library holding the kernels)."""
    pending = [module]
    while pending:
        candidate = pending.pop()
        if candidate.implements_function(symbol, False):
            return candidate
        pending.extend(candidate.imports)
    raise KeyError(f"no module of the .so defines {symbol}")


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e6


def shape_text(shapes: list[tuple[int, ...]]) -> str:
    """A kernel's first argument's shape -> its output's: "1x14x14x512 -> 1x14x14x512"."""
    return f"{'x'.join(map(str, shapes[0]))} -> {'x'.join(map(str, shapes[-1]))}"


def _shape(arg) -> tuple[int, ...] | None:
    shape = getattr(arg, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def kernel_calls(vm, call):
    """A function that runs the model once (`call`) and returns its kernel calls in order, as
    (symbol, kind, shape, us): the VM's instrument before and after each one, the VM's builtins
    left out. The instrument stays set on `vm`."""
    calls: list[tuple[str, str, str, float]] = []
    started: list = [0.0, None]

    def timer(_func, symbol, before, _ret, *args):
        symbol = str(symbol)
        if symbol.startswith(VM_BUILTIN):
            return 0
        if before:
            shapes = [s for s in map(_shape, args) if s is not None]
            started[1] = (symbol, kernel_kind(symbol, shapes), shape_text(shapes))
            started[0] = time.perf_counter()  # the last thing before the call
        else:
            calls.append((*started[1], (time.perf_counter() - started[0]) * 1e6))
        return 0

    vm.set_instrument(timer)

    def run():
        calls.clear()
        call()
        return list(calls)

    return run


def format_profile(profile: KernelProfile) -> str:
    total = sum(k.total_us for k in profile.kernels) or 1.0
    alone = all(k.alone_us is not None for k in profile.kernels)
    head = f"{'alone':>9s} " if alone else ""
    lines = [
        f"per-kernel profile of ours at {profile.threads} thread(s), in the model "
        "(median per model call)"
        + (", and alone (each kernel called by itself, warm caches)" if alone else "")
        + ":",
        f"{'kernel':36s} {'kind':10s} {'calls':>5s} {'us':>9s} {head}{'%':>6s}  shape",
    ]
    lines += [
        f"{k.name[:36]:36s} {k.kind:10s} {k.calls:5d} {k.total_us:9.1f} "
        + (f"{k.alone_us:9.1f} " if alone else "")
        + f"{100 * k.total_us / total:5.1f}%  {k.shape}"
        for k in profile.kernels
    ]
    calls = sum(k.calls for k in profile.kernels)
    alone_sum = f" {sum(k.alone_us for k in profile.kernels):9.1f}" if alone else ""
    lines += [
        f"{'sum of kernels':36s} {'':10s} {calls:5d} {total:9.1f}{alone_sum}",
        f"{'whole model (no instrument)':36s} {'':10s} {'':5s} {profile.whole_us:9.1f}",
        "by kind: "
        + ", ".join(f"{kind} {us:.0f} us ({n} calls)" for kind, n, us in profile.by_kind()),
    ]
    if alone:
        lines.append(
            "in the model - alone, by kind: "
            + ", ".join(f"{kind} {us:+.0f} us" for kind, us in profile.model_cost_by_kind())
        )
    return "\n".join(lines)
