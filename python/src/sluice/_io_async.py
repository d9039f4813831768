"""What differs between the flavours besides ``async``/``await``: the async side. The generator
(python/scripts/gen_sync.py) swaps this module for _io_sync.py."""

from __future__ import annotations

import asyncio
import inspect
from typing import Set

import httpx

# Cancels sent by finalizers: the loop keeps only weak references to its tasks.
_cancels: Set["asyncio.Task[None]"] = set()


async def sleep(seconds: float) -> None:
    """Waits without blocking the event loop."""
    await asyncio.sleep(seconds)


async def maybe_await(value: object) -> None:
    """Awaits a callback's answer when it is awaitable (async callbacks are allowed here)."""
    if inspect.isawaitable(value):
        await value


def cancel_when_collected(client: httpx.AsyncClient, path: str, timeout: float) -> None:
    """A stream collected while its work runs: POSTs ``path`` from a task of the running loop,
    best effort. Without a running loop nothing can be sent here; the client's aclose() cancels it."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if client.is_closed or loop.is_closed():
        return
    task = loop.create_task(_post(client, path, timeout))
    _cancels.add(task)
    task.add_done_callback(_cancels.discard)


async def _post(client: httpx.AsyncClient, path: str, timeout: float) -> None:
    try:
        await client.post(path, timeout=timeout)
    except (httpx.HTTPError, RuntimeError):
        pass  # best effort: the server's timeout still bounds the run; RuntimeError: client closed
