"""What makes every command start quickly: TVM imported without PyTorch, only the CPU tensor
intrinsics registered, logs that cannot hold a model's tasks skipped undecoded."""

from __future__ import annotations

import subprocess
import sys

from tvm.s_tir import TensorIntrin

from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.resources import shipped_logs_dir
from tvm_mobilenet.tasks.extract import extract_tasks
from tvm_mobilenet.tune.log import may_hold
from tvm_mobilenet.tune.startup import import_tensor_intrinsics

from .conftest import TINY_MODEL


def run_python(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_tvm_loads_without_torch_and_torch_still_works_after():
    script = (
        "import sys, tvm_mobilenet, tvm.relax\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "import torch\n"
        "print(float(torch.arange(4.0).sum()))\n"
    )
    assert run_python(script).split() == ["6.0"]


def test_only_the_cpu_intrinsics_are_registered():
    script = (
        "from tvm_mobilenet.tune.startup import import_tensor_intrinsics\n"
        "from tvm.s_tir import TensorIntrin\n"
        "import_tensor_intrinsics()\n"
        "names = ['dot_16x4_vnni', 'dot_4x4_i8i8s32_sdot', 'mma_ldmatrix_f16_a']\n"
        "print([TensorIntrin.get(n, allow_missing=True) is not None for n in names])\n"
    )
    assert run_python(script).strip() == "[True, True, False]"
    import_tensor_intrinsics()  # idempotent in this process, whatever imported TVM's first
    assert TensorIntrin.get("dot_16x4_vnni") is not None


def test_a_log_is_skipped_only_when_it_holds_none_of_the_tasks():
    device = load_device("x86", "avx2")
    log = shipped_logs_dir() / "x86" / "host-znver3-2c" / "mobilenet_v1-1.0-224-b1"
    full, _ = load_model(ModelConfig(alpha=1.0, resolution=224))
    tiny, _ = load_model(ModelConfig(**TINY_MODEL))
    full_tasks = extract_tasks(full, device.target, "all")
    tiny_tasks = extract_tasks(tiny, device.target, "depthwise")  # its softmax is 1.0/224's
    assert may_hold(log, [t.mod for t in full_tasks])
    assert not may_hold(log, [t.mod for t in tiny_tasks])
    # every one of the 1.0/224 model's tasks is in its own log
    assert all(may_hold(log, [t.mod]) for t in full_tasks)
