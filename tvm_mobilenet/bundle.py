"""`python -m tvm_mobilenet.bundle` still works: the bundle command lives in
tvm_mobilenet/cli/bundle.py."""

if __name__ == "__main__":
    from tvm_mobilenet.cli import run_command

    run_command("bundle")
