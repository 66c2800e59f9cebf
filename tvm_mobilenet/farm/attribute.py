"""Which function each executed block ran in: per-symbol instruction counts of one counted run.

The guest writes its /proc/self/maps at exit: it says which file each address belongs to; the
file's ELF symbols (aarch64-linux-gnu-nm, dynamic symbols for stripped libraries) say which
function. A block is charged to the nearest symbol at or below its first instruction.
"""

from __future__ import annotations

import bisect
import functools
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.farm.insn_count import CLASSES, Block

NM, READELF = "aarch64-linux-gnu-nm", "aarch64-linux-gnu-readelf"  # binutils-aarch64-linux-gnu


@dataclass(frozen=True)
class Mapping:
    """An executable file mapping of the guest process."""

    start: int
    end: int
    file_offset: int
    path: Path  # on this machine (rootfs paths already prefixed)


@dataclass(frozen=True)
class Place:
    """Where a block is: its file, the symbol it belongs to, and its address in the ELF file."""

    path: Path
    symbol: str
    address: int

    @property
    def key(self) -> tuple[str, str]:
        return self.path.name, self.symbol


def read_maps(text: str, rootfs: Path) -> list[Mapping]:
    """Executable file mappings from /proc/self/maps; guest paths that exist only in the rootfs
    are looked up there, as qemu's -L does."""
    maps = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            in_rootfs = rootfs / parts[5].lstrip("/")
            path = in_rootfs if in_rootfs.exists() else Path(parts[5])
            maps.append(Mapping(start, end, int(parts[2], 16), path))
    return sorted(maps, key=lambda mapping: mapping.start)


@functools.cache
def _segments(path: Path) -> list[tuple[int, int, int]]:
    """PT_LOAD segments: (file offset, virtual address, file size)."""
    out = subprocess.run(
        [READELF, "-lW", str(path)], capture_output=True, text=True, check=False
    ).stdout
    segments = []
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            segments.append((int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)))
    return segments


@functools.cache
def _symbols(path: Path) -> tuple[list[int], list[str]]:
    """Function symbols (demangled) sorted by address (the static table, else the dynamic one)."""
    out = ""
    for flags in (["-n", "-C", "--defined-only"], ["-D", "-n", "-C", "--defined-only"]):
        out = subprocess.run(
            [NM, *flags, str(path)], capture_output=True, text=True, check=False
        ).stdout
        if out.strip():
            break
    pairs = sorted(
        (int(fields[0], 16), fields[2])
        for fields in (line.split(maxsplit=2) for line in out.splitlines())
        if len(fields) == 3 and fields[1] in "tTwWi"
    )
    return [address for address, _ in pairs], [name for _, name in pairs]


def elf_address(path: Path, file_offset: int) -> int:
    """The ELF virtual address of a file offset (what objdump and nm use)."""
    for offset, vaddr, size in _segments(path):
        if offset <= file_offset < offset + size:
            return vaddr + file_offset - offset
    return file_offset


def symbol_at(path: Path, address: int) -> str:
    addresses, names = _symbols(path)
    index = bisect.bisect_right(addresses, address) - 1
    return names[index] if index >= 0 else "?"


def locate(blocks: list[Block], maps: list[Mapping]) -> dict[int, Place | None]:
    """The Place of each block's vaddr (None outside any file: qemu's or the JIT's code)."""
    starts = [mapping.start for mapping in maps]
    places: dict[int, Place | None] = {}
    for block in blocks:
        if block.vaddr in places:
            continue
        index = bisect.bisect_right(starts, block.vaddr) - 1
        place = None
        if index >= 0 and block.vaddr < maps[index].end:
            mapping = maps[index]
            address = elf_address(mapping.path, block.vaddr - mapping.start + mapping.file_offset)
            place = Place(mapping.path, symbol_at(mapping.path, address), address)
        places[block.vaddr] = place
    return places


def by_symbol(blocks: list[Block], places: dict[int, Place | None]) -> dict[tuple, Counter]:
    """{(file name, symbol): Counter of "instructions" and CLASSES} over all executed blocks."""
    totals: dict[tuple, Counter] = {}
    for block in blocks:
        place = places[block.vaddr]
        key = place.key if place is not None else ("[anonymous]", "?")
        entry = totals.setdefault(key, Counter())
        entry["instructions"] += block.executed
        for name, count in zip(CLASSES, block.classes, strict=True):
            entry[name] += count * block.executions
    return totals
