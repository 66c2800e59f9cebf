"""Import TVM without PyTorch: tvm_ffi and tvm.relax import torch whenever it is installed (~1.8 s
of a 4.5 s start on a 2-core AMD EPYC, 2026-11-26), only for conversions of torch tensors we never
make. Both guard the import with `except ImportError`, so torch is hidden while they load and
imported normally later by whoever needs it (a .pt2 model file, the PyTorch peer)."""

from __future__ import annotations

import sys


def import_tvm_without_torch() -> None:
    if "torch" in sys.modules or "tvm" in sys.modules:
        return  # torch is there already, or it is too late to matter
    sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        import tvm.relax  # noqa: F401
    finally:
        del sys.modules["torch"]
