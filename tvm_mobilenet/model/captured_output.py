"""Capture what a frontend prints: Python's stdout, and file descriptor 2, where TVM's C++ logs go.

A failed import must be one line. TVM's ONNX frontend prints the failing operator and its inputs
(`print`, to stdout) before it raises, and when a failed frontend's BlockBuilder is destroyed TVM's
C++ logging writes "Warning: BlockBuilder destroyed with remaining blocks!" to fd 2 (not to
`sys.stderr`, so `contextlib.redirect_stderr` cannot catch it).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass


@dataclass
class CapturedOutput:
    stdout: str = ""
    stderr: str = ""

    def replay(self) -> None:
        """Print what was captured, where it was going (after a success, nothing is hidden)."""
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)


@contextlib.contextmanager
def captured_output():
    """Capture stdout and fd 2 for the block; the text is in the yielded object after it.

    Python's own `sys.stderr` writes go to fd 2 as well, so they are captured too.
    """
    captured = CapturedOutput()
    printed = io.StringIO()
    sys.stderr.flush()
    saved_fd2 = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(printed):
                yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd2, 2)
            os.close(saved_fd2)
            sink.seek(0)
            captured.stderr = sink.read().decode(errors="replace")
            captured.stdout = printed.getvalue()
