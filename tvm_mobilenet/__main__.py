"""`tvm-mobilenet COMMAND [flags]` (or `python -m tvm_mobilenet COMMAND`): one entry point for every
command, as `tvmc` had."""

from __future__ import annotations

import sys

from tvm_mobilenet.cli import COMMANDS, run_command
from tvm_mobilenet.cli.common import EXIT_USAGE


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: tvm-mobilenet COMMAND [flags]   (tvm-mobilenet COMMAND --help for its flags)",
        "",
        "commands, in the order of the flow:",
    ]
    lines += [
        f"  {name.replace('_', '-'):{width}s}  {summary}" for name, summary in COMMANDS.items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if argv else EXIT_USAGE)
    name = argv[0].replace("-", "_")
    if name not in COMMANDS:
        print(
            f"tvm-mobilenet: error: unknown command '{argv[0]}'; choose one of "
            f"{', '.join(n.replace('_', '-') for n in COMMANDS)} (see --help)",
            file=sys.stderr,
        )
        sys.exit(EXIT_USAGE)
    run_command(name, argv[1:], prog=f"tvm-mobilenet {argv[0]}")


if __name__ == "__main__":
    main()
