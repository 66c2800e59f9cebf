"""`python -m tvm_mobilenet.farm`: the farm command (tvm_mobilenet/cli/farm.py)."""

from tvm_mobilenet.cli import run_command

run_command("farm")
