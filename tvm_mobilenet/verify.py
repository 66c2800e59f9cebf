"""`python -m tvm_mobilenet.verify` still works: the verify command lives in
tvm_mobilenet/cli/verify.py."""

if __name__ == "__main__":
    from tvm_mobilenet.cli import run_command

    run_command("verify")
