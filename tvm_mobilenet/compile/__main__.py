"""`python -m tvm_mobilenet.compile`: the compile command (tvm_mobilenet/cli/compile.py)."""

from tvm_mobilenet.cli import run_command

run_command("compile")
