"""Huge pages for a loaded module's memory (tvm_mobilenet/run/huge_pages.py): which memory counts
as new, and the kernel taking the advice for it."""

from __future__ import annotations

import ctypes
import mmap
import re
from pathlib import Path

import pytest

from tvm_mobilenet.run import huge_pages
from tvm_mobilenet.run.huge_pages import HUGE_PAGE, NewMemory, new_memory

MB = 1 << 20


def test_new_memory_is_what_was_not_mapped_before():
    before = [(0x1000, 0x5000), (0x10000, 0x20000)]
    after = [
        (0x1000, 0x9000),  # a heap that grew: its new tail only
        (0x9000, 0xA000),  # a new mapping
        (0xF000, 0x30000),  # a mapping around an old one: both sides
        (0x40000, 0x41000),  # new again
    ]
    assert new_memory(before, after) == [
        (0x5000, 0x9000),
        (0x9000, 0xA000),
        (0xF000, 0x10000),
        (0x20000, 0x30000),
        (0x40000, 0x41000),
    ]
    assert new_memory(after, after) == []


def _transparent_huge_pages() -> str:
    """The kernel's mode ('always', 'madvise' or 'never'), '' where it has none."""
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    found = re.search(r"\[(\w+)\]", path.read_text()) if path.exists() else None
    return found.group(1) if found else ""


def _eligible_bytes(start: int, end: int) -> int:
    """Bytes of this process's mappings inside [start, end) the kernel may back with huge pages
    (smaps' THPeligible: set by the advice where the mode is 'madvise')."""
    total, size = 0, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
        if head:
            low, high = int(head.group(1), 16), int(head.group(2), 16)
            size = high - low if start <= low and high <= end else 0
        elif line.startswith("THPeligible:") and line.split()[1] == "1":
            total += size
    return total


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_memory_mapped_after_the_watch_starts_gets_huge_pages(monkeypatch):
    monkeypatch.delenv(huge_pages.ENV, raising=False)
    watch = NewMemory()
    region = mmap.mmap(-1, 9 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.write(b"\1" * len(region))  # touched: backed by 4 KB pages until collapsed
    advised = watch.to_huge_pages()
    mode = _transparent_huge_pages()
    if mode in ("", "never"):
        assert advised == 0
        return
    # 9 MB from any 4 KB boundary hold at least 3 whole 2 MB pages (the heap may have grown too).
    assert advised >= 3 * HUGE_PAGE and advised % HUGE_PAGE == 0
    address = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert _eligible_bytes(address, address + len(region)) >= 3 * HUGE_PAGE
    assert watch.to_huge_pages() == 0  # once only


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(huge_pages.ENV, "0")
    watch = NewMemory()
    region = mmap.mmap(-1, 9 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.write(b"\1" * len(region))
    assert watch.to_huge_pages() == 0
