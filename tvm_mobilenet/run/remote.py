"""Run an exported .so on a device behind an RPC tracker: upload, load in a remote VM, run, time."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from tvm_mobilenet.errors import FarmUnavailableError
from tvm_mobilenet.farm.tracker import request_session
from tvm_mobilenet.run.runtime import INPUT_SHAPE_FUNC, RunResult, checked_input, input_dtype_of
from tvm_mobilenet.tune.measure import RpcSettings


class RemoteModel:
    """An exported MobileNet .so loaded on one device of `rpc.key` (the session is held until
    closed)."""

    def __init__(self, path: str | Path, rpc: RpcSettings):
        import tvm
        from tvm import relax

        path = Path(path)
        self.session = request_session(rpc.tracker, rpc.key, rpc.timeout_sec)
        try:
            self.session.upload(str(path), path.name)
            lib = self.session.load_module(path.name)
            self.device = self.session.cpu()
            self.vm = relax.VirtualMachine(lib, self.device)
        except (OSError, RuntimeError, tvm.error.TVMError) as err:
            raise FarmUnavailableError(
                f"could not load {path} on a '{rpc.key}' device at {rpc.tracker} "
                f"({str(err).strip().splitlines()[-1]})"
            ) from None
        self.label = f"a '{rpc.key}' device at {rpc.tracker}"
        self._tensor = tvm.runtime.tensor
        self.input_dtype = input_dtype_of(self.vm)

    def input_shape(self) -> tuple[int, ...]:
        # The shape stays an object on the device; the runtime's RPC helpers read its elements.
        shape = self.vm[INPUT_SHAPE_FUNC]()
        size = self.session.get_function("rpc.testing.GetShapeSize")
        element = self.session.get_function("rpc.testing.GetShapeElem")
        return tuple(int(element(shape, i)) for i in range(size(shape)))

    def run(self, data: np.ndarray, repeat: int = 1) -> RunResult:
        """Run once for the output, then time `repeat` runs on the device (its own clock)."""
        data = checked_input(data, self.input_shape(), self.input_dtype)
        tensor = self._tensor(data, self.device)
        output = self.vm["main"](tensor).numpy()
        timer = self.vm.time_evaluator("main", self.device, number=1, repeat=max(repeat, 1))
        latencies = [float(s) * 1e3 for s in timer(tensor).results]
        return RunResult(output, statistics.median(latencies), latencies)
