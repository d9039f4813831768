"""A slow consumer never makes the SDK buffer without bound: unread output stays in the socket
(and the server's log), and every byte still arrives."""

from __future__ import annotations

import tracemalloc

from _servers import wait_for

from sluice import Sluice, StdoutEvent

SIZE = 12 * 1024 * 1024  # under the 16 MiB output limit, so nothing is truncated


def test_a_paused_consumer_holds_no_more_than_a_chunk(client: Sluice) -> None:
    session = client.sessions.create()
    code = f"import sys\nline = 'y' * 1023 + '\\n'\nfor _ in range({SIZE // 1024}):\n    sys.stdout.write(line)"
    stream = session.stream(code, mode="process")
    it = iter(stream)
    first = next(it)
    assert first.type == "start"
    execution_id = stream.execution_id
    assert execution_id is not None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # The program finishes while this reader reads nothing.
        # (Polled through the session view: the execution view would carry all 12 MB each time.)
        wait_for("the program to finish", lambda: session.refresh().state == "idle", 120, 0.1)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2 * 1024 * 1024, f"the SDK buffered {grown} bytes for a paused reader"
    total = 0
    for ev in it:
        if isinstance(ev, StdoutEvent):
            total += len(ev.content)
    assert total == SIZE
    assert stream.result().success
    session.delete()
