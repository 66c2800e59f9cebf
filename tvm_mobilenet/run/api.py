"""Python entry point of `run`: load a compiled .so (here with the runtime only, or on a remote
device), run it on an input, and compare with the model file's own framework if asked.

Nothing here imports tvm at import time (see tvm_mobilenet/run/__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_mobilenet.files import check_output
from tvm_mobilenet.run.runtime import RunResult, input_header, load_input, use_runtime_only
from tvm_mobilenet.run.threads import use_all_cores


@dataclass
class RunReport:
    module: Path
    input_shape: tuple[int, ...]
    ran_on: str
    result: RunResult
    source: dict | None = None  # {"framework", "max_abs_error"} with a model file

    def as_dict(self) -> dict:
        return {
            "module": str(self.module),
            "input_shape": list(self.input_shape),
            "ran_on": self.ran_on,
            "median_ms": self.result.median_ms,
            "latencies_ms": self.result.latencies_ms,
            "top5": [[c, p] for c, p in self.result.top5()],
            **({"source": self.source} if self.source else {}),
        }


def open_module(path: Path, rpc=None):
    """(model, input shape, where): loaded here with the runtime only, or on a device of `rpc`."""
    if rpc is None:
        use_runtime_only()
        from tvm_mobilenet.run.runtime import LoadedModel

        model = LoadedModel(path)
        return model, model.input_shape, "this machine"
    from tvm_mobilenet.farm.tracker import emulated_keys
    from tvm_mobilenet.run.remote import RemoteModel

    model = RemoteModel(path, rpc)
    emulated = " (emulated: the latency is not performance)" if rpc.key in emulated_keys() else ""
    return model, model.input_shape(), model.label + emulated


def compare_with_source(
    path: Path, data: np.ndarray, output: np.ndarray, trusted: bool = False
) -> dict:
    """Run the model file in its own framework (no TVM compiler involved) and compare the
    softmax."""
    from tvm_mobilenet.model.frameworks import model_format, run_source
    from tvm_mobilenet.model.reference import as_probabilities

    framework, expected = run_source(model_format(path, trusted), path, data)
    error = float(abs(as_probabilities(output) - as_probabilities(expected)).max())
    return {"framework": framework, "max_abs_error": error}


def run_module(
    path: Path,
    input_file: Path | None = None,
    repeat: int = 10,
    output_file: Path | None = None,
    model_file: Path | None = None,
    rpc=None,
    trust_model_file: bool = False,
) -> RunReport:
    """Run the module `repeat` times after a warm-up on `input_file` (default: the fixed input).

    Loading a .so runs its code: run only modules you built or trust."""
    if output_file is not None:
        inputs = {"module": path, "--input": input_file, "--model": model_file}
        check_output(output_file, "--output", inputs)
    if input_file is not None:
        input_header(input_file)  # a bad input is told before the module loads
    if model_file is not None:
        from tvm_mobilenet.model.frameworks import model_format

        model_format(model_file, trust_model_file)
    use_all_cores()
    model, input_shape, where = open_module(path, rpc)
    from tvm_mobilenet.model.reference import input_for

    data = (
        load_input(input_file, input_shape)
        if input_file
        else input_for(input_shape, model.input_dtype)
    )
    result = model.run(data, repeat=repeat)
    if output_file is not None:
        result.save(output_file)
    source = (
        compare_with_source(model_file, data, result.output, trust_model_file)
        if model_file
        else None
    )
    return RunReport(path, input_shape, where, result, source)
