"""Pieces without a server: the error factory, backoff, paths, the fold."""

from __future__ import annotations

import pytest

from sluice import (
    DoneEvent,
    InternalError,
    InvalidRequestError,
    Line,
    NotFoundError,
    Reconnect,
    RunResult,
    SessionBusyError,
    StdoutEvent,
    error_from_code,
)
from sluice._async_client import _workspace_path
from sluice._backoff import backoff_delay
from sluice._errors import error_from_answer
from sluice._events import parse_execution_event


def test_the_factory_maps_codes_and_falls_back_to_the_status() -> None:
    e = error_from_code("SESSION_BUSY", "full", status=409, request_id="r1", retry_after=1)
    assert isinstance(e, SessionBusyError) and e.request_id == "r1" and e.retry_after == 1 and e.status == 409
    newer = error_from_code("BRAND_NEW", "from a newer server", status=404)
    assert isinstance(newer, NotFoundError) and "BRAND_NEW" in newer.message
    assert isinstance(error_from_code("X", "y", status=418), InvalidRequestError)
    assert isinstance(error_from_code("X", "y", status=599), InternalError)


def test_a_proxy_page_becomes_the_class_of_its_status() -> None:
    e = error_from_answer(404, "Not Found", {"x-request-id": "abc"}, "<html>nope</html>", "GET /x", "sent")
    assert isinstance(e, NotFoundError) and e.request_id == "abc" and "<html>" in e.message
    e2 = error_from_answer(409, "", {"retry-after": "2"}, '{"error":{"code":"SESSION_BUSY","message":"busy"}}', "POST", "sent")
    assert isinstance(e2, SessionBusyError) and e2.retry_after == 2 and e2.request_id == "sent"


def test_backoff_doubles_within_bounds_and_honours_retry_after() -> None:
    p = Reconnect(max_attempts=5, initial_delay=0.25, max_delay=2)
    assert backoff_delay(1, p, lambda: 0.0) == 0.125
    assert backoff_delay(3, p, lambda: 1.0) == 1.0
    assert backoff_delay(10, p, lambda: 1.0) == 2
    assert backoff_delay(1, p, lambda: 0.0, retry_after=1) == 1
    with pytest.raises(ValueError, match="max_attempts"):
        Reconnect(max_attempts=-1)


def test_paths_are_relative_to_the_workspace_or_absolute_under_it() -> None:
    assert _workspace_path("a/b.txt") == "a/b.txt"
    assert _workspace_path("/workspace/a/b.txt") == "a/b.txt"
    assert _workspace_path("/workspace") == ""
    with pytest.raises(ValueError, match="under /workspace"):
        _workspace_path("/etc/passwd")


def test_the_fold_and_lines() -> None:
    r = RunResult()
    r.add(StdoutEvent(2, 0, "hi\n"))
    r.add(DoneEvent(3, 0, 0, "1.500s", 1500, "exited"))
    assert r.success and r.execution_time == 1.5 and r.stdout == "hi\n"
    line = Line("oops", "stderr")
    assert line == "oops" and line.stream == "stderr" and isinstance(line, str)


def test_a_malformed_event_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="content"):
        parse_execution_event({"type": "stdout", "seq": 1, "ts": 0, "content": 3})
    with pytest.raises(InternalError, match="unknown type"):
        parse_execution_event({"type": "what", "seq": 1, "ts": 0})
