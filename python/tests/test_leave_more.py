"""Leaving, the cases test_leave.py does not cover: closing the async client with a stream left
by ``break`` or an exception, a started stream being garbage-collected, and a stream that fails
inside the SDK. Each must cancel the execution on the server (whose on_disconnect is continue)."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import List

import pytest
from _servers import Proxy, SluiceServer, wait_for

from sluice import AsyncSluice, Reconnect, Sluice, SluiceConnectionError, StartEvent

FOREVER = "import time\ni = 0\nwhile True:\n    print(f'tick {i}', flush=True)\n    i += 1\n    time.sleep(0.05)"


def finished_reason(client: Sluice, execution_id: str) -> str:
    """Polls the server until the execution is over (30 s at most); its reason."""
    reason: List[str] = []

    def over() -> bool:
        info = client.execution(execution_id)
        if info.get("state") == "finished":
            reason.append(str(info.get("reason")))
            return True
        return False

    wait_for(f"execution {execution_id} to finish", over, timeout=30, interval=0.05)
    return reason[0]


async def afinished_reason(client: AsyncSluice, execution_id: str) -> str:
    """The same, giving the loop turns while it waits (a finalizer's cancel is a task of the loop)."""
    deadline = time.monotonic() + 30
    while True:
        info = await client.execution(execution_id)
        if info.get("state") == "finished":
            return str(info.get("reason"))
        assert time.monotonic() < deadline, f"execution {execution_id} did not finish"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["break", "exception"])
def test_leaving_inside_async_with_cancels(server: SluiceServer, client: Sluice, how: str) -> None:
    ids: List[str] = []

    async def main() -> None:
        async with AsyncSluice(server.url) as c:
            session = await c.sessions.create()
            ids.append(session.id)
            # No handle on the stream: the loop's async generator is all there is, and the loop
            # closes it only after __aexit__ closed the client.
            async for ev in session.stream(FOREVER, mode="process"):
                if isinstance(ev, StartEvent):
                    ids.append(ev.execution_id)
                if ev.type == "stdout":
                    if how == "break":
                        break
                    raise KeyError("the consumer failed")

    if how == "break":
        asyncio.run(main())
    else:
        with pytest.raises(KeyError):
            asyncio.run(main())
    assert len(ids) == 2
    assert finished_reason(client, ids[1]) == "cancelled"
    client.sessions.delete(ids[0])


def test_closing_the_client_cancels_a_started_stream_but_not_a_detached_one(server: SluiceServer, client: Sluice) -> None:
    with Sluice(server.url) as c:
        session = c.sessions.create()
        started = session.stream(FOREVER, mode="process")
        started_id = started.start()
    assert finished_reason(client, started_id) == "cancelled"
    with Sluice(server.url) as c:
        other = c.session(session.id).stream("import time\ntime.sleep(1)\nprint('detached')", mode="process")
        other_id = other.start()
        other.detach()
    assert finished_reason(client, other_id) == "exited"
    client.sessions.delete(session.id)


def test_a_collected_started_stream_cancels_sync(client: Sluice) -> None:
    session = client.sessions.create()
    stream = session.stream(FOREVER, mode="process")
    execution_id = stream.start()
    del stream
    gc.collect()
    assert finished_reason(client, execution_id) == "cancelled"
    session.delete()


async def test_a_collected_started_stream_cancels_async(aclient: AsyncSluice) -> None:
    session = await aclient.sessions.create()
    stream = session.stream(FOREVER, mode="process")
    execution_id = await stream.start()
    del stream
    gc.collect()
    assert await afinished_reason(aclient, execution_id) == "cancelled"
    await session.delete()


def test_a_stream_that_gives_up_cancels_sync(proxy: Proxy, client: Sluice) -> None:
    with Sluice(proxy.url, reconnect=Reconnect(max_attempts=0)) as c:
        session = c.sessions.create()
        stream = session.stream(FOREVER, mode="process")
        proxy.arm("cut", 1500)
        with pytest.raises(SluiceConnectionError, match="reconnection"):
            for _ in stream:
                pass
        assert proxy.cuts == 1 and stream.execution_id is not None
        assert finished_reason(client, stream.execution_id) == "cancelled"
        session.delete()


async def test_a_stream_that_gives_up_cancels_async(proxy: Proxy, aclient: AsyncSluice) -> None:
    async with AsyncSluice(proxy.url, reconnect=Reconnect(max_attempts=0)) as c:
        session = await c.sessions.create()
        stream = session.stream(FOREVER, mode="process")
        proxy.arm("cut", 1500)
        with pytest.raises(SluiceConnectionError, match="reconnection"):
            async for _ in stream:
                pass
        assert proxy.cuts == 1 and stream.execution_id is not None
        assert await afinished_reason(aclient, stream.execution_id) == "cancelled"
        await session.delete()
