"""Leaving a stream: break (or an exception, or the iterator collected) cancels the execution on
the server; detach() keeps it running so it can be followed again by id."""

from __future__ import annotations

import asyncio
import time
from typing import Dict, List

from _servers import wait_for

from sluice import AsyncSluice, DoneEvent, Sluice, StdoutEvent

FOREVER = "import time\ni = 0\nwhile True:\n    print(f'tick {i}', flush=True)\n    i += 1\n    time.sleep(0.05)"


def finished_reason(client: Sluice, execution_id: str) -> str:
    """Polls the server until the execution is over; its reason."""
    info: Dict[str, object] = {}

    def over() -> bool:
        info.update(client.execution(execution_id))
        return info.get("state") == "finished"

    wait_for(f"execution {execution_id} to finish", over)
    return str(info.get("reason"))


def test_break_cancels_on_the_server_sync(client: Sluice) -> None:
    session = client.sessions.create()
    stream = session.stream(FOREVER, mode="process")
    for ev in stream:  # the handle is still referenced: the loop's iterator is what is collected
        if isinstance(ev, StdoutEvent) and "tick 2" in ev.content:
            break
    assert stream.execution_id is not None
    assert finished_reason(client, stream.execution_id) == "cancelled"
    session.delete()


def test_an_exception_in_the_loop_cancels_sync(client: Sluice) -> None:
    session = client.sessions.create()
    stream = session.stream(FOREVER, mode="process")
    try:
        for ev in stream:
            if ev.type == "stdout":
                raise KeyError("the consumer failed")
    except KeyError:
        pass
    assert stream.execution_id is not None
    assert finished_reason(client, stream.execution_id) == "cancelled"
    session.delete()


async def test_break_cancels_on_the_server_async(aclient: AsyncSluice, client: Sluice) -> None:
    session = await aclient.sessions.create()
    stream = session.stream(FOREVER, mode="process")
    async for ev in stream:
        if isinstance(ev, StdoutEvent) and "tick 2" in ev.content:
            break
    execution_id = stream.execution_id
    assert execution_id is not None
    # The collected async generator is closed by a task of the loop: give the loop turns.
    deadline = time.monotonic() + 30
    while (await aclient.execution(execution_id)).get("state") != "finished":
        assert time.monotonic() < deadline, "the execution was not cancelled"
        await asyncio.sleep(0.02)
    assert (await aclient.execution(execution_id))["reason"] == "cancelled"
    await session.delete()


async def test_async_with_cancels_on_exit(aclient: AsyncSluice) -> None:
    session = await aclient.sessions.create()
    async with session.stream(FOREVER, mode="process") as stream:
        async for ev in stream:
            if ev.type == "stdout":
                break
    assert stream.execution_id is not None
    info = await aclient.execution(stream.execution_id)
    deadline = time.monotonic() + 30
    while info.get("state") != "finished":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
        info = await aclient.execution(stream.execution_id)
    assert info["reason"] == "cancelled"
    await session.delete()


def test_detach_keeps_it_running_and_attach_continues_exactly_once(client: Sluice) -> None:
    session = client.sessions.create()
    code = "import time\nfor i in range(30):\n    print(f'step {i}', flush=True)\n    time.sleep(0.03)"
    stream = session.stream(code, mode="process")
    seqs: List[int] = []
    text = ""
    break_at = 0
    execution_id = None
    for ev in stream:
        seqs.append(ev.seq)
        if isinstance(ev, StdoutEvent):
            text += ev.content
            if "step 3" in text:
                break_at = stream.last_seq
                execution_id = stream.detach()
                break
    assert execution_id is not None
    for ev in session.attach(execution_id, from_seq=break_at + 1):
        seqs.append(ev.seq)
        if isinstance(ev, StdoutEvent):
            text += ev.content
        if isinstance(ev, DoneEvent):
            assert ev.reason == "exited"  # detached, not cancelled
    assert seqs == list(range(1, len(seqs) + 1))
    assert text == "".join(f"step {i}\n" for i in range(30))
    session.delete()


def test_cancel_stops_it_and_the_loop_reaches_done(client: Sluice) -> None:
    session = client.sessions.create()
    stream = session.stream(FOREVER, mode="process", timeout=30)
    last = None
    asked = False
    for ev in stream:
        if ev.type == "stdout" and not asked:
            stream.cancel()
            asked = True
        last = ev
    assert isinstance(last, DoneEvent) and last.reason == "cancelled"
    session.delete()
