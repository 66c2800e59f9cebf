"""The README names only paths that exist, and its commands are the ones the package has."""

import re

from tvm_mobilenet.cli import COMMANDS

from .conftest import ROOT

README = (ROOT / "README.md").read_text()
TOP_LEVEL = {p.name for p in ROOT.iterdir()}


def named_paths(text: str) -> set[str]:
    """`a/b.py`-like names in backticks whose first component is a top-level entry of the repo."""
    paths = set()
    for token in re.findall(r"`([^`\s<>*]+)`", text):
        first = token.split("/")[0]
        if "/" in token and first in TOP_LEVEL:
            paths.add(token.rstrip("/"))
    return paths


def test_every_path_the_readme_names_exists():
    paths = named_paths(README) | named_paths((ROOT / "tuning_logs" / "README.md").read_text())
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_every_command_the_readme_uses_exists():
    used = set(re.findall(r"python -m tvm_mobilenet\.([a-z_]+)", README))
    used |= {name.replace("-", "_") for name in re.findall(r"tvm-mobilenet ([a-z][a-z-]*)", README)}
    assert used and used <= set(COMMANDS), used - set(COMMANDS)
