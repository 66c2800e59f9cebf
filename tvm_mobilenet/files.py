"""Files the user hands us or names as outputs: arrays checked from their headers before they are
read, and outputs that can be written and overwrite no input."""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tvm_mobilenet.errors import OutputPathError

ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ArrayHeader:
    """What a .npy header says: enough to refuse an array before reading (or allocating) it."""

    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int  # bytes of magic + header

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def numeric(self) -> bool:
        return self.dtype.kind in "fiub" and not self.dtype.hasobject


def read_array_header(stream: BinaryIO) -> ArrayHeader:
    """The header of the .npy data at the stream's position; ValueError if it is not one."""
    start = stream.tell()
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:  # 2.0 and 3.0 differ from 1.0 only in the header's length field and encoding
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return ArrayHeader(tuple(int(d) for d in shape), dtype, stream.tell() - start)


def npy_header(path: Path) -> ArrayHeader:
    """The header of a .npy file; ValueError naming what the file is if it is not one."""
    with open(path, "rb") as file:
        if file.read(4) == ZIP_MAGIC:
            raise ValueError("it is a .npz archive, not a single array saved with numpy.save")
        file.seek(0)
        header = read_array_header(file)
        size = os.fstat(file.fileno()).st_size
    if header.data_offset + header.nbytes > size:
        raise ValueError(f"its header promises {header.nbytes} bytes of data; the file is shorter")
    return header


def npz_headers(path: Path) -> dict[str, tuple[ArrayHeader, int]]:
    """{array name: (header, uncompressed size)} of an .npz archive, read without decompressing
    the arrays (a small archive can hold gigabytes of zeros)."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                raise ValueError(f"'{member.filename}' is not an array")
            with archive.open(member) as stream:
                headers[member.filename[: -len(".npy")]] = (
                    read_array_header(stream),
                    member.file_size,
                )
    return headers


def check_output(path: Path, flag: str, inputs: dict[str, Path | None] | None = None) -> None:
    """Refuse, before any work, an output that is a directory, one of the command's `inputs`
    ({flag: path}), or in a directory that cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{flag} {path} is a directory: name a file in it")
    for input_flag, input_path in (inputs or {}).items():
        if input_path is not None and _same_file(path, Path(input_path)):
            raise OutputPathError(
                f"{flag} {path} is also the {input_flag} file: writing it would destroy the "
                "input; name another file"
            )
    existing = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {flag} {path}: {existing} is not a writable directory")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_failed(path: Path, flag: str, err: OSError) -> OutputPathError:
    return OutputPathError(f"cannot write {flag} {path}: {err.strerror or err}")
