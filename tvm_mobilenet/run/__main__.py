"""`python -m tvm_mobilenet.run`: the run command (tvm_mobilenet/cli/run.py)."""

from tvm_mobilenet.cli import run_command

run_command("run")
