"""Our compiled .so, run by the TVM runtime's VM, with its thread pool set to the benchmark's
count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tvm_mobilenet.bench.peer import Peer, Predict
from tvm_mobilenet.errors import ModuleLoadError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.run.threads import run_on_threads
from tvm_mobilenet.tasks.blocks import STRASSEN_SUFFIX

TENSOR_ALIGNMENT = 64  # TVM refuses a DLPack tensor whose data is not aligned to this


class Ours(Peer):
    name = "tvm_mobilenet"
    label = "tvm_mobilenet"
    modules = ("tvm",)

    def __init__(self, module_path: str | Path, input_shape: tuple[int, ...] | None = None):
        """`input_shape`: what the module takes (default the config's NCHW float input)."""
        self.module_path, self.input_shape = Path(module_path), input_shape
        self._model = None

    def prepare(self, config: ModelConfig, weights: dict[str, np.ndarray], threads: int) -> Predict:
        import tvm

        from tvm_mobilenet.run.runtime import LoadedModel, module_input

        if self._model is None:
            self._model = LoadedModel(self.module_path)
        model = self._model
        expected = tuple(self.input_shape or config.input_shape)
        if tuple(model.input_shape) != expected:
            raise ModuleLoadError(
                f"{self.module_path} takes input {model.input_shape}, the benchmark's model "
                f"{expected}: "
                "pass the --alpha/--resolution/--batch it was compiled for"
            )
        running = run_on_threads(threads)
        if running != threads:
            raise ModuleLoadError(
                f"the TVM runtime runs {running} threads, not {threads}: set "
                f"TVM_NUM_THREADS={threads} or more before tvm is imported"
            )
        # The input taken in place where TVM can (64-byte aligned, writable), as ONNX Runtime takes
        # a numpy input (a Shape-only ONNX model runs as fast on a 100x larger input: no copy);
        # the copy would cost ours 26 us per 1.0/224 call. Otherwise one input tensor, refilled
        # per call (a new one per call cost 0.14 ms of allocation and page faults at 0.25/128 on
        # a znver3), made at the first call in the input's dtype (int8 for a full-integer model).
        # The output is handed over the same way, without a copy (np.from_dlpack: a view that keeps
        # the call's output tensor alive; the next call writes another). Tensor.numpy() runs ~10
        # Python operations after the model, each missing the caches the model just swept: 0.10-0.14
        # ms per 1.0/224 call (2-core AMD EPYC, znver4, 2026-11-27; 10.77 vs 10.66 ms per call, a
        # bare tensor 10.63), where ONNX Runtime builds its output array in C++.
        main, tensors = model.vm["main"], {}

        def predict(data: np.ndarray) -> np.ndarray:
            data = module_input(data)
            if data.ctypes.data % TENSOR_ALIGNMENT == 0 and data.flags.writeable:
                return np.from_dlpack(main(tvm.runtime.from_dlpack(data)))
            tensor = tensors.get(data.dtype)
            if tensor is None:
                tensor = tensors[data.dtype] = tvm.runtime.tensor(data, model.device)
            else:
                tensor.copyfrom(data)
            return np.from_dlpack(main(tensor))

        return predict

    @property
    def strassen_layers(self) -> int:
        """Layers our module runs as Strassen kernels (tasks/strassen.py), once it is loaded."""
        if self._model is None:
            return 0
        return sum(name.endswith(STRASSEN_SUFFIX) for name in self._model.kernel_calls())

    @property
    def huge_page_bytes(self) -> int:
        """How much of our module's memory went onto huge pages (run/huge_pages.py)."""
        return self._model.huge_page_bytes if self._model is not None else 0

    def version(self) -> str:
        import tvm

        return f"TVM {tvm.__version__}"
