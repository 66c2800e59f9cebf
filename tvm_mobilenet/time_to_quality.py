"""`python -m tvm_mobilenet.time_to_quality` still works: the time_to_quality command lives in
tvm_mobilenet/cli/time_to_quality.py."""

if __name__ == "__main__":
    from tvm_mobilenet.cli import run_command

    run_command("time_to_quality")
