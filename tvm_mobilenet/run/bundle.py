"""Ship a model: the C++ example app, the .so and the two TVM runtime libraries in one folder.

The architecture comes from the .so itself (its ELF header), so an aarch64 model gets the
cross-built
app and the aarch64 runtime of `tvm-mobilenet setup emulation`, an x86-64 model the native ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.errors import CrossCompilerError, ModuleLoadError, OutputPathError
from tvm_mobilenet.farm.emulation import SETUP_COMMAND, emulation
from tvm_mobilenet.files import write_failed
from tvm_mobilenet.resources import cpp_app_dir

APP_NAME = "mobilenet_app"
_ELF_MACHINES = {0x3E: "native", 0xB7: "aarch64"}  # e_machine: x86-64, AArch64
_MAKE_TIMEOUT_SEC = 300


@dataclass
class Bundle:
    folder: Path
    arch: str  # "native" (x86-64) or "aarch64"
    files: list[str]


def module_arch(path: Path) -> str:
    """'native' or 'aarch64', read from the ELF header of an exported .so."""
    try:
        header = Path(path).read_bytes()[:20]
    except OSError as err:
        raise ModuleLoadError(f"cannot read {path} ({err.strerror})") from None
    machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None
    if machine not in _ELF_MACHINES:
        raise ModuleLoadError(
            f"{path} is not an x86-64 or aarch64 shared library: build one with "
            "`python -m tvm_mobilenet.compile`"
        )
    return _ELF_MACHINES[machine]


def build_app(arch: str, build_dir: Path) -> Path:
    """Build the app for `arch` with cpp_app/Makefile into `build_dir`; the executable's path."""
    if shutil.which("make") is None:
        raise CrossCompilerError(f"`make` is not installed: run `{SETUP_COMMAND}`")
    env = {**os.environ, "TVM_MOBILENET_CACHE": str(emulation().root.parent)}
    result = subprocess.run(
        ["make", "-s", "-C", str(cpp_app_dir()), f"BUILD={build_dir.resolve()}", arch],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=_MAKE_TIMEOUT_SEC,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise CrossCompilerError(
            f"building the {arch} app failed: {lines[-1]} (try `{SETUP_COMMAND}`)"
        )
    return build_dir / arch / APP_NAME


def runtime_libraries(arch: str) -> list[Path]:
    """libtvm_runtime.so and libtvm_ffi.so for `arch` (the host's wheels, or the aarch64 ones)."""
    if arch == "native":
        import tvm
        import tvm_ffi.libinfo

        return [
            Path(tvm.__file__).parent / "lib" / "libtvm_runtime.so",
            Path(tvm_ffi.libinfo.find_libtvm_ffi()),
        ]
    wheels = emulation().wheels
    libraries = [
        wheels / "tvm" / "lib" / "libtvm_runtime.so",
        wheels / "tvm_ffi" / "lib" / "libtvm_ffi.so",
    ]
    if not all(lib.is_file() for lib in libraries):
        raise CrossCompilerError(f"no aarch64 TVM runtime in {wheels}: run `{SETUP_COMMAND}`")
    return libraries


def bundle(model: Path, folder: Path, build_dir: Path = Path("build") / "app") -> Bundle:
    """Gather app, model and runtime libraries into `folder` (the app finds the libraries beside
    it)."""
    arch = module_arch(model)
    if folder.exists() and folder.resolve() == model.resolve().parent:
        raise OutputPathError(
            f"-o {folder} is the folder {model.name} is in: the bundle copies the module into "
            "its folder; name another folder"
        )
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"-o {folder} is a file: name a folder")
    app = build_app(arch, build_dir)
    files = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for source in [app, model, *runtime_libraries(arch)]:
            shutil.copy2(source, folder / source.name)
            files.append(source.name)
    except OSError as err:
        raise write_failed(folder, "-o", err) from None
    return Bundle(folder, arch, files)
