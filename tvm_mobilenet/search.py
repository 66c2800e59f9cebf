"""Search styles: which MetaSchedule design space each task is tuned in."""

from __future__ import annotations

from .errors import TvmMobilenetError
from .tasks import Task

SEARCH_STYLES = ("auto",)


def space_generator(task: Task, search: str):
    """The MetaSchedule space generator for `task` under search style `search`.

    "auto": MetaSchedule's generated space (post-order application of the target's default
    schedule rules), what Ansor did.
    """
    if search == "auto":
        return "post-order-apply"
    raise TvmMobilenetError(f"unknown search style '{search}': choose one of {', '.join(SEARCH_STYLES)}")
