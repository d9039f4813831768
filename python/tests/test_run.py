"""Runs against the real server: callbacks fire live, typed events in order, idempotent starts,
the error classes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List, Tuple

import pytest

from sluice import (
    AsyncSluice,
    DoneEvent,
    ExecutionEvent,
    InvalidRequestError,
    NotFoundError,
    ProgressEvent,
    ResultEvent,
    SessionBusyError,
    Sluice,
    StartEvent,
    StdoutEvent,
    UnsupportedLanguageError,
)

# Prints, then waits (up to 30 s) for a file only the test's callback creates: the run can end
# with "second" only if the callback fired while it was still running.
WAIT_FOR_GO = """
import os, time
print("first", flush=True)
deadline = time.time() + 30
while not os.path.exists("go") and time.time() < deadline:
    time.sleep(0.02)
print("second" if os.path.exists("go") else "no go")
"""


def test_callbacks_fire_live_sync(client: Sluice) -> None:
    session = client.sessions.create()
    arrivals: List[Tuple[float, str]] = []

    def on_stdout(text: str) -> None:
        arrivals.append((time.monotonic(), text))
        if "first" in text:
            session.files.write("go", "")

    result = session.run(WAIT_FOR_GO, mode="process", on_stdout=on_stdout)
    assert result.success, result
    assert "second" in result.stdout
    assert arrivals[0][1].startswith("first")
    assert arrivals[-1][0] >= arrivals[0][0]
    session.delete()


async def test_callbacks_fire_live_async_with_async_callbacks(aclient: AsyncSluice) -> None:
    session = await aclient.sessions.create()
    seen: List[str] = []

    async def on_stdout(text: str) -> None:
        seen.append(text)
        if "first" in text:
            await session.files.write("go", b"")

    result = await session.run(WAIT_FOR_GO, mode="process", on_stdout=on_stdout, on_stderr=seen.append)
    assert result.success and "second" in result.stdout
    assert "".join(seen).startswith("first")
    await session.delete()


CODE = """
import sys
from sluice import progress, result
print("one")
progress(50, "half")
print("two", file=sys.stderr)
result({"answer": 42})
"""


def test_typed_events_in_order(client: Sluice) -> None:
    session = client.sessions.create()
    events: List[ExecutionEvent] = list(session.stream(CODE, mode="process"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[0], StartEvent) and isinstance(events[-1], DoneEvent)
    kinds = [e.type for e in events if e.type in ("stdout", "progress", "stderr", "result")]
    assert kinds == ["stdout", "progress", "stderr", "result"]
    for ev in events:
        match ev:
            case ProgressEvent(percent=p, message=m):
                assert (p, m) == (50, "half")
            case ResultEvent(data=d):
                assert d["application/json"] == {"answer": 42}
            case DoneEvent(exit_code=code, reason=reason):
                assert (code, reason) == (0, "exited")
            case _:
                pass
    session.delete()


def test_an_idempotency_key_returns_the_same_execution(client: Sluice) -> None:
    session = client.sessions.create()
    first = session.run("print('once')", mode="process", idempotency_key="py-idem-1")
    again = session.run("print('once')", mode="process", idempotency_key="py-idem-1")
    assert again.execution_id == first.execution_id and again.stdout == "once\n"
    session.delete()


def test_error_classes_carry_the_request_id(client: Sluice) -> None:
    with pytest.raises(NotFoundError) as nf:
        client.sessions.get("no-such-session")
    assert nf.value.status == 404 and nf.value.request_id
    with pytest.raises(InvalidRequestError, match="id"):
        client.sessions.create(id="not a valid id!")
    session = client.sessions.create()
    with pytest.raises((UnsupportedLanguageError, InvalidRequestError)):
        session.run("x", "cobol")
    session.delete()


def test_a_full_queue_is_session_busy(client: Sluice) -> None:
    # The server runs with SLUICE_MAX_QUEUE=1: one running, one waiting, the third refused.
    session = client.sessions.create()
    running = session.stream(WAIT_FOR_GO, mode="process")
    running.start()
    queued = session.stream("print('queued')", mode="process")
    queued.start()
    with pytest.raises(SessionBusyError) as busy:
        session.stream("print('refused')", mode="process").start()
    assert busy.value.retry_after == 1 and busy.value.request_id
    session.files.write("go", "")
    assert running.result().stdout == "first\nsecond\n"
    assert queued.result().stdout == "queued\n"
    session.delete()


def test_the_environment_names_the_server(server: object, monkeypatch: pytest.MonkeyPatch) -> None:
    url = getattr(server, "url")
    monkeypatch.setenv("SLUICE_URL", url)
    with Sluice() as c:
        assert c.base_url == url
        assert any(lang["language"] == "python" for lang in c.languages())


def test_a_sync_client_in_a_thread_beside_an_event_loop(client: Sluice, server: object) -> None:
    # The flavours never block each other: a sync run in a thread while a loop runs its own.
    out: List[str] = []
    t = threading.Thread(target=lambda: out.append(client.session("py-thread").run("print('t')", mode="process").stdout))
    t.start()

    async def main() -> str:
        async with AsyncSluice(getattr(server, "url")) as a:
            return (await a.session("py-loop").run("print('l')", mode="process")).stdout

    assert asyncio.run(main()) == "l\n"
    t.join(60)
    assert out == ["t\n"]
    client.sessions.delete("py-thread")
    client.sessions.delete("py-loop")
