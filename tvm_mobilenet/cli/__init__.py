"""The command-line layer: argument parsing and printing only.

Each command is a module here with `main(argv, prog)`; it parses its flags and calls one plain
function of its stage (tvm_mobilenet.tune.api.tune, tvm_mobilenet.compile.api.compile_model, ...),
which tests call directly. `tvm-mobilenet COMMAND` and `python -m tvm_mobilenet.COMMAND` both end
in `run_command`.
"""

from __future__ import annotations

import importlib

from tvm_mobilenet.cli.common import run_cli

# name -> one line for `tvm-mobilenet --help`, in the order of the flow
COMMANDS = {
    "model": "MobileNet v1's layer table (mult-adds, parameters) and a weights template",
    "tune": "tune the depthwise and pointwise convolutions for a target (resumable log)",
    "logs": "the catalogue of tuning logs: shipped and local, per device and model",
    "compile": "build the tuned model into a .so and check it against the reference",
    "verify": "run every generated OpenCL kernel on an OpenCL device here (Mali kernels on PoCL)",
    "run": "run a compiled .so with the TVM runtime only: top-5 and latency",
    "bundle": "gather the C++ app, a .so and the TVM runtime libraries into one folder",
    "farm": "an RPC tracker and emulated aarch64 devices on this machine",
    "bench": "time ours against ONNX Runtime, OpenVINO, TFLite/XNNPACK and PyTorch; on ARM, "
    "count aarch64 instructions under qemu",
    "compare_search": "template vs generated search spaces at equal budgets",
    "time_to_quality": "minutes of tuning until the model is within 1.2x of its final latency",
    "setup": "install what emulation (qemu, cross compiler) or OpenCL (PoCL) needs",
}


def run_command(name: str, argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run command `name` (exits with its code: 0, 2 for bad input, 130 for Ctrl-C)."""
    module = importlib.import_module(f"tvm_mobilenet.cli.{name}")
    run_cli(lambda: module.main(argv, prog or f"python -m tvm_mobilenet.{name}"))
