"""Where the files shipped with the package are: target presets, tuning logs, the C++ app and the
set-up scripts.

In the repository they are top-level folders (targets/, tuning_logs/, scripts/) that pyproject.toml
maps into the package; installed from a wheel, they are package data. importlib.resources finds them
either way, from any working directory.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def _package_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def targets_dir() -> Path:
    """The target presets (TVM_MOBILENET_TARGETS overrides, for a user's own presets)."""
    override = os.environ.get("TVM_MOBILENET_TARGETS")
    return Path(override) if override else _package_dir("tvm_mobilenet.targets")


def shipped_logs_dir() -> Path:
    return _package_dir("tvm_mobilenet.tuning_logs")


def cpp_app_dir() -> Path:
    return _package_dir("tvm_mobilenet.run") / "cpp_app"


def setup_script(name: str) -> Path:
    return _package_dir("tvm_mobilenet.scripts") / f"setup_{name}.sh"
