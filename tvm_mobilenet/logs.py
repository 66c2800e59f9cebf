"""`python -m tvm_mobilenet.logs`: the catalogue of tuning logs (tvm_mobilenet/cli/logs.py)."""

if __name__ == "__main__":
    from tvm_mobilenet.cli import run_command

    run_command("logs")
