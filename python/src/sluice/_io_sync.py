"""What differs between the flavours besides ``async``/``await``: the sync side (see _io_async.py)."""

from __future__ import annotations

import inspect
import threading
import time

import httpx


def sleep(seconds: float) -> None:
    """Waits, blocking this thread only."""
    time.sleep(seconds)


def maybe_await(value: object) -> None:
    """A sync callback's answer is ignored; an awaitable one means an ``async def`` callback,
    which this client could never run: say so rather than drop it."""
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # no "never awaited" warning on top of the error
        raise TypeError(
            "a callback returned an awaitable (an async def?): the blocking client Sluice calls "
            "callbacks synchronously; use a plain function, or AsyncSluice for async callbacks"
        )


def cancel_when_collected(client: httpx.Client, path: str, timeout: float) -> None:
    """A stream collected while its work runs: POSTs ``path``, best effort, from a short-lived
    thread: a finalizer may run while this thread holds the connection pool's lock."""
    if client.is_closed:
        return
    threading.Thread(target=_post, args=(client, path, timeout), name="sluice-cancel", daemon=True).start()


def _post(client: httpx.Client, path: str, timeout: float) -> None:
    try:
        client.post(path, timeout=timeout)
    except (httpx.HTTPError, RuntimeError):
        pass  # best effort: the server's timeout still bounds the run; RuntimeError: client closed
