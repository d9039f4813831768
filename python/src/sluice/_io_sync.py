"""What differs between the flavours besides ``async``/``await``: the sync side (see _io_async.py)."""

from __future__ import annotations

import time


def sleep(seconds: float) -> None:
    """Waits, blocking this thread only."""
    time.sleep(seconds)


def maybe_await(value: object) -> None:
    """Sync callbacks' answers are ignored."""
    del value
