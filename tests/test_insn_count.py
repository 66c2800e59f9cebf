"""The instruction-counting plugin is exact: a static aarch64 program whose executed instructions
are known by construction (tests/data/known_count.S: 9 + 19 K instructions; per iteration 3 vector
FMA, 2 scalar FMA, 6 loads/stores of which 3 SIMD, 3 branch-class) is counted to the instruction,
whatever qemu's CPU model."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tvm_mobilenet.errors import InstructionCountError
from tvm_mobilenet.farm.emulation import SETUP_COMMAND, emulation
from tvm_mobilenet.farm.insn_count import count_instructions

SOURCE = Path(__file__).parent / "data" / "known_count.S"
ASSEMBLER, LINKER = "aarch64-linux-gnu-as", "aarch64-linux-gnu-ld"


@pytest.fixture(autouse=True)
def counting_set_up():
    problem = emulation().counting_missing()
    if problem is None and shutil.which(ASSEMBLER) is None:
        problem = f"{ASSEMBLER} is not installed"
    if problem:
        pytest.skip(f"instruction counting is not set up ({problem}): run `{SETUP_COMMAND}`")


def known_program(tmp_path: Path, iterations: int) -> Path:
    obj, exe = tmp_path / "known.o", tmp_path / f"known_{iterations}"
    subprocess.run(
        [ASSEMBLER, "--defsym", f"ITERATIONS={iterations}", "-o", obj, SOURCE], check=True
    )
    subprocess.run([LINKER, "-static", "-o", exe, obj], check=True)
    return exe


@pytest.mark.parametrize("iterations", [1, 1000, 65537])
def test_known_program_is_counted_exactly(tmp_path, iterations):
    run = count_instructions([known_program(tmp_path, iterations)], mnemonics=True, blocks=True)
    k = iterations
    assert run.counts["instructions"] == 9 + 19 * k
    assert run.counts["fma_instructions"] == 3 * k
    assert run.counts["fma_scalar_instructions"] == 2 * k
    assert run.counts["loads_stores"] == 6 * k
    assert run.counts["loads_stores_simd"] == 3 * k
    assert run.counts["branches"] == 3 * k + 1  # + the exit's svc
    assert run.mnemonics["fmla"] == 3 * k and run.mnemonics["fmul"] == k  # fmul is no FMA
    assert sum(block.executed for block in run.blocks) == run.counts["instructions"]


def test_counts_do_not_depend_on_the_cpu_model(tmp_path):
    program = known_program(tmp_path, 100)
    counts = {cpu: count_instructions([program], cpu=cpu).counts for cpu in ("cortex-a53", "max")}
    assert counts["cortex-a53"] == counts["max"]
    assert counts["max"]["instructions"] == 9 + 19 * 100


def test_a_failing_program_is_a_typed_error(tmp_path):
    with pytest.raises(InstructionCountError, match="exited with code"):
        count_instructions([tmp_path / "no_such_program"])
