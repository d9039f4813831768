"""What differs between the flavours besides ``async``/``await``: the async side. The generator
(python/scripts/gen_sync.py) swaps this module for _io_sync.py."""

from __future__ import annotations

import asyncio
import inspect


async def sleep(seconds: float) -> None:
    """Waits without blocking the event loop."""
    await asyncio.sleep(seconds)


async def maybe_await(value: object) -> None:
    """Awaits a callback's answer when it is awaitable (async callbacks are allowed here)."""
    if inspect.isawaitable(value):
        await value
