"""`python -m tvm_mobilenet.compare_search` still works: the compare_search command lives in
tvm_mobilenet/cli/compare_search.py."""

if __name__ == "__main__":
    from tvm_mobilenet.cli import run_command

    run_command("compare_search")
