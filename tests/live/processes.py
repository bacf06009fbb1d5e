"""Process helpers for the live tests (not a test module, not a fixture file)."""

from __future__ import annotations

import os


def group_alive(pid: int) -> bool:
    """Whether any process is left in the process group led by `pid`."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
