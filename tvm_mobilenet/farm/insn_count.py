"""Count the aarch64 instructions a program executes: qemu user mode with our TCG plugin.

The plugin (scripts/qemu_insn_count.c, built by `tvm-mobilenet setup emulation`) classifies each
instruction when qemu translates it, by its 32-bit encoding, and counts how often each translated
block runs. Counts are exact for the code that really runs, libraries included (checked on a
program whose count is known by construction, tests/data/known_count.S); they say nothing about
cycles, caches or memory.

Only Debian's dynamic `qemu-aarch64` (package qemu-user) loads plugins; `qemu-aarch64-static`
cannot. The plugin's per-block add is not atomic: count programs that run one thread at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tvm_mobilenet.errors import InstructionCountError
from tvm_mobilenet.farm.emulation import DEFAULT_QEMU_CPU, QEMU_DYNAMIC, require_emulation

# The plugin's classes, in the order of its per-block lines (blocks=FILE):
CLASSES = (
    "fma_instructions",  # vector FMLA/FMLS (three-same and by element): the "vector FMA"
    "fma_scalar_instructions",  # FMADD/FMSUB/FNMADD/FNMSUB, scalar FMLA/FMLS by element
    "loads_stores",  # every load/store encoding (LDP/STP, LD1.., exclusives, atomics, PRFM)
    "loads_stores_simd",  # the subset that moves SIMD&FP registers
    "branches",  # branches, exception generation, system instructions (SVC, barriers, hints)
)
COUNTS = ("instructions", *CLASSES)


@dataclass(frozen=True)
class Block:
    """One translated block that executed: `instructions` 4-byte instructions from `vaddr` on,
    run `executions` times; `classes` counts each of CLASSES once."""

    vaddr: int
    instructions: int
    executions: int
    classes: tuple[int, ...]

    @property
    def executed(self) -> int:
        return self.instructions * self.executions


@dataclass
class CountedRun:
    """What one program run executed."""

    counts: dict[str, int]  # COUNTS, plus "translated_blocks"
    stdout: str
    mnemonics: dict[str, int] | None = None  # executions per mnemonic, when asked
    blocks: list[Block] = field(default_factory=list)  # every executed block, when asked


def _plugin_options(plugin: Path, out: Path, blocks: Path | None, mnemonics: bool) -> str:
    options = f"{plugin},out={out}"
    if mnemonics:
        options += ",mnemonics=on"
    if blocks is not None:
        options += f",blocks={blocks}"
    return options


def read_blocks(path: Path) -> list[Block]:
    """The plugin's blocks=FILE: `vaddr(hex) instructions executions class...` per line."""
    blocks = []
    for line in path.read_text().splitlines():
        vaddr, instructions, executions, *classes = line.split()
        blocks.append(
            Block(int(vaddr, 16), int(instructions), int(executions), tuple(map(int, classes)))
        )
    return blocks


def count_instructions(
    argv: list,
    *,
    sysroot: Path | None = None,
    env: dict[str, str] | None = None,
    cpu: str = DEFAULT_QEMU_CPU,
    mnemonics: bool = False,
    blocks: bool = False,
    timeout: float | None = None,
) -> CountedRun:
    """Run the aarch64 program `argv` under qemu (libraries from `sysroot`, `env` its whole
    environment) and return what it executed; InstructionCountError if it fails."""
    plugin = require_emulation(counting=True).count_plugin
    with tempfile.TemporaryDirectory(prefix="tvm_mobilenet_count_") as tmp:
        out, block_file = Path(tmp) / "counts.json", Path(tmp) / "blocks.txt"
        command = [QEMU_DYNAMIC, "-cpu", cpu, "-plugin"]
        command.append(_plugin_options(plugin, out, block_file if blocks else None, mnemonics))
        if sysroot is not None:
            command += ["-L", str(sysroot)]
        try:
            proc = subprocess.run(
                [*command, *map(str, argv)],
                env=env if env is not None else dict(os.environ),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise InstructionCountError(
                f"{argv[0]} did not finish within {timeout:g} s under {QEMU_DYNAMIC}"
            ) from None
        if proc.returncode != 0 or not out.is_file():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise InstructionCountError(
                f"{argv[0]} exited with code {proc.returncode} under {QEMU_DYNAMIC}: {tail}"
            )
        counts = json.loads(out.read_text())
        return CountedRun(
            counts={key: int(value) for key, value in counts.items() if key != "mnemonics"},
            stdout=proc.stdout,
            mnemonics=counts.get("mnemonics"),
            blocks=read_blocks(block_file) if blocks else [],
        )
