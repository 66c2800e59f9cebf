"""`python -m tvm_mobilenet.model`: the model command (tvm_mobilenet/cli/model.py)."""

from tvm_mobilenet.cli import run_command

run_command("model")
