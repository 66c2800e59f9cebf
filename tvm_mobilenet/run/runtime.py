"""Load and run an exported .so with only the TVM runtime (what an app does).

Import this module before anything imports tvm, after setting TVM_USE_RUNTIME_LIB=1 (see
`use_runtime_only`), to prove the .so needs nothing but libtvm_runtime and libtvm_ffi."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_mobilenet.errors import ModuleLoadError
from tvm_mobilenet.files import ArrayHeader, npy_header, write_failed
from tvm_mobilenet.run.huge_pages import NewMemory

INPUT_SHAPE_FUNC = "input_shape"  # a function every exported module has
INPUT_DTYPE_FUNC = "input_dtype"  # since 2026-11-27; modules from before take float32 or int8


def checked_input(data: np.ndarray, shape: tuple[int, ...], dtype: str | None) -> np.ndarray:
    """`data` as a module of input `shape` and `dtype` takes it; ModuleLoadError if it cannot."""
    if tuple(data.shape) != tuple(shape):
        raise ModuleLoadError(f"input has shape {tuple(data.shape)}, the module expects {shape}")
    return module_input(data, dtype)


def module_input(data: np.ndarray, dtype: str | None = None) -> np.ndarray:
    """`data` as a module whose input is `dtype` takes it (None, a module without `input_dtype`:
    int8 stays int8, the rest float32). A full-integer module refuses float data: its input is
    the quantized image, and guessing the input's scale and zero point would be wrong."""
    if dtype is None:
        dtype = data.dtype if np.issubdtype(data.dtype, np.integer) else np.float32
    elif np.issubdtype(np.dtype(dtype), np.integer):
        limits = np.iinfo(dtype)
        if not np.issubdtype(data.dtype, np.integer) or (
            data.size and (data.min() < limits.min or data.max() > limits.max)
        ):
            raise ModuleLoadError(
                f"the module's input is {dtype} (a full-integer model: the image quantized "
                f"with its input scale and zero point), not {data.dtype} values"
                + (f" in [{data.min()}, {data.max()}]" if data.size else "")
            )
    return np.ascontiguousarray(data, dtype=dtype)


def input_dtype_of(vm) -> str | None:
    """The input dtype a module reports (None: built before modules reported it)."""
    try:
        return str(vm[INPUT_DTYPE_FUNC]())
    except AttributeError:  # "Module has no function 'input_dtype'"
        return None


def use_runtime_only() -> None:
    """Make the next `import tvm` load libtvm_runtime only (no compiler)."""
    os.environ["TVM_USE_RUNTIME_LIB"] = "1"


@dataclass
class RunResult:
    output: np.ndarray
    median_ms: float
    latencies_ms: list[float]

    def save(self, path: str | Path) -> None:
        try:
            np.save(path, self.output)
        except OSError as err:
            raise write_failed(Path(path), "--output", err) from None

    def top5(self, item: int = 0) -> list[tuple[int, float]]:
        scores = self.output[item].astype(np.float64)  # int8 outputs: -(-128) overflows in int8
        best = np.argsort(-scores, kind="stable")[:5]
        return [(int(i), float(scores[i])) for i in best]


class LoadedModel:
    """An exported MobileNet .so in a runtime-only VM on the CPU."""

    def __init__(self, path: str | Path):
        import tvm
        import tvm.runtime.vm

        path = Path(path)
        new_memory = NewMemory()
        if not path.is_file():
            raise ModuleLoadError(
                f"{path} does not exist: build it with `python -m tvm_mobilenet.compile -o {path}`"
            )
        try:
            lib = tvm.runtime.load_module(str(path))
            self.device = tvm.cpu()
            self.vm = tvm.runtime.vm.VirtualMachine(lib, self.device)
            self.input_shape = tuple(int(d) for d in self.vm[INPUT_SHAPE_FUNC]())
            self.input_dtype = input_dtype_of(self.vm)
        except Exception as err:  # a foreign or damaged file fails in many TVM ways
            raise ModuleLoadError(
                f"cannot load {path} as a tvm_mobilenet module "
                f"({str(err).strip().splitlines()[-1]}); "
                "rebuild it with `python -m tvm_mobilenet.compile`"
            ) from None
        self._tensor = tvm.runtime.tensor
        self._main = self.vm["main"]
        self._library = lib
        self.huge_page_bytes = self._settle(new_memory)

    @property
    def library(self):
        """The loaded .so (the VM's executable, which imports the kernels' library)."""
        return self._library

    def kernel_calls(self) -> list[str]:
        """The TIR functions `main` calls, one entry per call, in order (from the VM program)."""
        lines = self._library["as_text"]().splitlines()
        called = [line.split()[1] for line in lines if line.strip().startswith("call ")]
        return [name for name in called if not name.startswith("vm.")]  # not the VM's builtins

    def _settle(self, new_memory: NewMemory) -> int:
        """One call (the VM allocates its activation pool at the first), then the memory the
        model took onto huge pages (run/huge_pages.py); the bytes advised."""
        dtype = self.input_dtype or "float32"
        with contextlib.suppress(ValueError):  # a module from before `input_dtype` taking int8
            self._main(self._tensor(np.zeros(self.input_shape, dtype), self.device))
        return new_memory.to_huge_pages()

    def check_input(self, data: np.ndarray) -> np.ndarray:
        return checked_input(data, self.input_shape, self.input_dtype)

    def run(self, data: np.ndarray, repeat: int = 1) -> RunResult:
        """Run `repeat` times after one warm-up call; latencies are wall-clock per call."""
        tensor = self._tensor(self.check_input(data), self.device)
        try:
            output = self._main(tensor).numpy()
        except ValueError as err:
            if self.input_dtype is not None:  # checked above: not a dtype the module refused
                raise
            raise ModuleLoadError(  # a module without `input_dtype` given the other dtype
                f"the module refused the input ({str(err).strip().splitlines()[-1]}); rebuild it "
                "with `python -m tvm_mobilenet.compile` (modules since 2026-11-27 say their input "
                "dtype)"
            ) from None
        latencies = []
        for _ in range(max(repeat, 1)):
            start = time.perf_counter()
            self._main(tensor)
            latencies.append((time.perf_counter() - start) * 1e3)
        return RunResult(output, statistics.median(latencies), latencies)


def input_header(path: str | Path) -> ArrayHeader:
    """The header of a numeric .npy array, read without reading the array."""
    try:
        header = npy_header(Path(path))
    except (OSError, ValueError) as err:
        raise _bad_input(path, err) from None
    if not header.numeric:
        raise _bad_input(path, f"it holds {header.dtype} values, not numbers")
    return header


def load_input(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A numeric .npy array of `shape`, checked from its header before it is read."""
    header = input_header(path)
    if header.shape != tuple(shape):
        raise _bad_input(path, f"it has shape {header.shape}, the module expects {tuple(shape)}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise _bad_input(path, err) from None


def _bad_input(path, reason) -> ModuleLoadError:
    if isinstance(reason, OSError) and reason.strerror:
        reason = reason.strerror
    return ModuleLoadError(f"cannot use {path} as the input: {reason}")
