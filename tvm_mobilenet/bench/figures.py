"""PNG figures of the evidence commands (bench, compare_search, time_to_quality): headless
matplotlib."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); imported only when a plot is asked
    for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: Path, dpi: int = 110) -> None:
    """Lay out `figure` and write it to `path`, creating its directory."""
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
