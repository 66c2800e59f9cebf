"""`python -m tvm_mobilenet.bench`: the bench command (tvm_mobilenet/cli/bench.py)."""

from tvm_mobilenet.cli import run_command

run_command("bench")
