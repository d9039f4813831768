"""Resume: a proxy cuts (or silences) the connection mid-stream; the SDK reconnects with
Last-Event-ID and the caller sees every event exactly once, in both flavours."""

from __future__ import annotations

from typing import List

from _servers import Proxy
from conftest import FAST_RECONNECT

from sluice import AsyncSluice, DoneEvent, Sluice, StdoutEvent

LINES = 150
CODE = f"import time\nfor i in range({LINES}):\n    print(f'line {{i:04d}} ' + 'x' * 60, flush=True)\n    time.sleep(0.005)"
EXPECTED = "".join(f"line {i:04d} " + "x" * 60 + "\n" for i in range(LINES))


def check(seqs: List[int], text: str, proxy: Proxy) -> None:
    assert seqs == list(range(1, len(seqs) + 1)), "every event once, in order"
    assert text == EXPECTED
    assert proxy.cuts + proxy.stalls == 1, "the proxy broke the stream once"
    assert proxy.connections >= 2
    assert b"last-event-id:" in bytes(proxy.sent_upstream).lower()


def test_resume_after_a_cut_sync(proxy: Proxy) -> None:
    with Sluice(proxy.url, reconnect=FAST_RECONNECT) as client:
        session = client.sessions.create()
        proxy.arm("cut", 3000)
        seqs: List[int] = []
        text = ""
        last = None
        for ev in session.stream(CODE, mode="process"):
            seqs.append(ev.seq)
            if isinstance(ev, StdoutEvent):
                text += ev.content
            last = ev
        assert isinstance(last, DoneEvent) and last.reason == "exited"
        check(seqs, text, proxy)
        session.delete()


async def test_resume_after_a_cut_async(proxy: Proxy) -> None:
    async with AsyncSluice(proxy.url, reconnect=FAST_RECONNECT) as client:
        session = await client.sessions.create()
        proxy.arm("cut", 3000)
        seqs: List[int] = []
        text = ""
        async for ev in session.stream(CODE, mode="process"):
            seqs.append(ev.seq)
            if isinstance(ev, StdoutEvent):
                text += ev.content
        check(seqs, text, proxy)
        await session.delete()


def test_a_silent_connection_is_taken_for_dead_after_the_heartbeat_timeout(proxy: Proxy) -> None:
    # The proxy stops forwarding but keeps the socket open: only the read timeout notices.
    with Sluice(proxy.url, reconnect=FAST_RECONNECT, heartbeat_timeout=1.5) as client:
        session = client.sessions.create()
        proxy.arm("stall", 3000)
        result = session.run(CODE, mode="process")
        assert result.stdout == EXPECTED and result.success
        assert proxy.stalls == 1 and proxy.connections >= 2
        session.delete()
