"""`python -m tvm_mobilenet.tune`: the tune command (tvm_mobilenet/cli/tune.py)."""

from tvm_mobilenet.cli import run_command

run_command("tune")
