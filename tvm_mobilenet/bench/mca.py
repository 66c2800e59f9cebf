"""Static cycle estimate of a kernel's innermost loop with llvm-mca, for a Cortex-A72-class core
and a Neoverse-N1 (Cortex-A76-class) core.

The loop is the kernel's hottest translated block under the counting plugin (the block that
executed the most instructions), disassembled from the .so; llvm-mca repeats it as a loop body and
models the core's issue width, pipes and latencies. Not caches, memory bandwidth or branch
prediction. LLVM has no Cortex-A72 model (it uses the Cortex-A57's, same FP pipes: one 128-bit
FMLA per cycle), and LLVM 14 has no Neoverse-N1 model either (A57's again): each estimate says
which model LLVM really used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

CPUS = ("cortex-a72", "neoverse-n1")
# Newest first: LLVM 19 (Debian bookworm's llvm-19) has a Neoverse-N1 model; 14 (`llvm`) has not.
MCA_BINARIES = ("llvm-mca-19", "llvm-mca-18", "llvm-mca-17", "llvm-mca-16", "llvm-mca-15")
MCA_FALLBACK = "llvm-mca"
OBJDUMP = "aarch64-linux-gnu-objdump"
ITERATIONS = 200
FMA_MNEMONICS = ("fmla", "fmls")


@dataclass(frozen=True)
class LoopEstimate:
    """llvm-mca's steady state of one loop on one core."""

    cpu: str  # what was asked for (-mcpu)
    model: str  # the scheduling model LLVM used, from its resource names (A57, N1, ...)
    llvm_mca: str
    instructions: int
    fma: int
    cycles_per_iteration: float

    @property
    def fma_per_cycle(self) -> float:
        return self.fma / self.cycles_per_iteration if self.cycles_per_iteration else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "fma_per_cycle": round(self.fma_per_cycle, 3)}


def mca_binary() -> str | None:
    """The newest llvm-mca installed, or None."""
    for name in (*MCA_BINARIES, MCA_FALLBACK):
        if shutil.which(name):
            return name
    return None


def block_assembly(library: Path, address: int, instructions: int) -> list[str]:
    """A block's instructions as assembler text, its branches retargeted to the loop's label."""
    out = subprocess.run(
        [
            OBJDUMP,
            "-d",
            "--no-show-raw-insn",
            f"--start-address={address}",
            f"--stop-address={address + 4 * instructions}",
            str(library),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = []
    for line in out.splitlines():
        match = re.match(r"\s+[0-9a-f]+:\s+(.*)$", line)
        if match:
            text = match.group(1).split("//")[0].strip()
            lines.append(re.sub(r"\b[0-9a-f]+ <[^>]+>", "loop", text))
    return lines


def estimate(lines: list[str], cpu: str, mca: str) -> LoopEstimate:
    """llvm-mca's cycles per iteration of `lines` as a loop body on `cpu`."""
    source = "loop:\n" + "".join(f"  {line}\n" for line in lines)
    proc = subprocess.run(
        [mca, "-mtriple=aarch64-linux-gnu", f"-mcpu={cpu}", f"-iterations={ITERATIONS}"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    total = re.search(r"Total Cycles:\s+(\d+)", proc.stdout)
    if proc.returncode or total is None:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise RuntimeError(f"{mca} -mcpu={cpu} failed: {first}")
    model = re.search(r"Resources:\s*\n\[[\d.]+\]\s+-\s+([A-Za-z0-9]+?)Unit", proc.stdout)
    return LoopEstimate(
        cpu=cpu,
        model=model.group(1) if model else "?",
        llvm_mca=mca,
        instructions=len(lines),
        fma=sum(line.startswith(FMA_MNEMONICS) for line in lines),
        cycles_per_iteration=round(int(total.group(1)) / ITERATIONS, 2),
    )


def estimate_block(library: Path, address: int, instructions: int, mca: str) -> list[LoopEstimate]:
    """The block at `address` of `library` on each of CPUS."""
    lines = block_assembly(library, address, instructions)
    return [estimate(lines, cpu, mca) for cpu in CPUS]
