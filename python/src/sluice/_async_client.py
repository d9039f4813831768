"""The asyncio client, ``AsyncSluice``: sessions, runs streamed as typed events, commands, files
and agent runs. This file is the source of both flavours: python/scripts/gen_sync.py rewrites it
into _sync_client.py (``Sluice``), and ``npm test`` fails when that file is stale.

Streams follow the TypeScript SDK (docs/sdk.md, docs/python.md): a run starts with a POST that
carries an ``Idempotency-Key``; a lost connection (an error, a body that ends before the last
event, or silence longer than ``heartbeat_timeout``) is resumed with ``GET …/events`` and
``Last-Event-ID`` after a bounded, jittered backoff, and events seen twice are dropped by ``seq``.
The body is read only when the consumer asks for the next event, one network chunk at a time,
so a slow consumer leaves the bytes in the socket rather than in memory.
"""

from __future__ import annotations

import json as _json
import os
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from typing import (
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    Generic,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import quote

import httpx

from ._backoff import Reconnect, backoff_delay
from ._errors import (
    InternalError,
    SluiceConnectionError,
    SluiceError,
    SluiceTimeoutError,
    error_from_answer,
)
from ._events import (
    JSON,
    AgentEndEvent,
    AgentErrorEvent,
    AgentEvent,
    AgentStartEvent,
    DoneEvent,
    ErrorEvent,
    ExecutionEvent,
    ProgressEvent,
    ResultEvent,
    StartEvent,
    StderrEvent,
    StdoutEvent,
    TextDeltaEvent,
    parse_agent_event,
    parse_execution_event,
)
from ._io_async import cancel_when_collected, maybe_await, sleep
from ._results import (
    AgentResult,
    FileEntry,
    Line,
    RunResult,
    SessionInfo,
    read_file_entry,
    read_session_info,
)
from ._sse import SSEDecoder

DEFAULT_URL = "http://127.0.0.1:8080"

E = TypeVar("E", ExecutionEvent, AgentEvent)
R = TypeVar("R", RunResult, AgentResult)
_S = TypeVar("_S")

#: A callback: a plain function, or (in the async client) a coroutine function.
Callback = Callable[[str], object]

#: The longest wait for a cancel sent when a stream is left: leaving must not hang on a dead server.
_LEAVE_TIMEOUT = 10.0


def _new_id() -> str:
    return uuid.uuid4().hex


class _HTTP:
    """The one place the client talks HTTP: the bearer token, an ``X-Request-Id`` per request,
    typed errors for non-2xx answers, SluiceConnectionError / SluiceTimeoutError for the network."""

    def __init__(self, base_url: str, api_key: Optional[str], timeout: float, headers: Mapping[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        default_headers = {"user-agent": "sluice-python/0.1.0", **headers}
        if api_key is not None:
            default_headers["authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=default_headers, timeout=timeout)

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        content: Optional[bytes] = None,
        params: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
        stream: bool = False,
        read_timeout: Optional[float] = None,
        accept: Sequence[int] = (),
        timeout: Optional[float] = None,
    ) -> httpx.Response:
        """One request. With ``stream`` the body is the caller's to read and close; otherwise it
        is read. Non-2xx answers (but ``accept``) raise their typed error. ``timeout`` (seconds)
        replaces the client's for this request."""
        what = f"{method} {path}"
        request_id = _new_id()
        all_headers = {"x-request-id": request_id, **(headers or {})}
        limit = self.timeout if timeout is None else timeout
        bounds = httpx.Timeout(limit, read=read_timeout if read_timeout is not None else limit)
        request = self.client.build_request(
            method, path, json=json, content=content, params=params, headers=all_headers, timeout=bounds
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as err:
            raise SluiceTimeoutError(f"{what}: no answer within {limit} s", request_id=request_id) from err
        except httpx.TransportError as err:
            raise SluiceConnectionError(
                f"{what}: {err!r} (is the server at {self.base_url} running?)", request_id=request_id
            ) from err
        try:
            if response.is_success or response.status_code in accept:
                if not stream:
                    await response.aread()
                return response
            body = (await response.aread()).decode("utf-8", "replace")
        except httpx.TimeoutException as err:
            raise SluiceTimeoutError(f"{what}: the answer stalled", request_id=request_id) from err
        except httpx.TransportError as err:
            raise SluiceConnectionError(f"{what}: the answer broke off: {err!r}", request_id=request_id) from err
        finally:
            if not stream:
                await response.aclose()
        await response.aclose()
        raise error_from_answer(response.status_code, response.reason_phrase, response.headers, body, what, request_id)

    async def json(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        content: Optional[bytes] = None,
        params: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> object:
        """A request whose answer is JSON (None for an empty answer)."""
        response = await self.send(method, path, json=json, content=content, params=params, headers=headers)
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            value: object = response.json()
        except ValueError as err:
            raise InternalError(f"{method} {path}: the answer is not JSON: {response.text[:120]}") from err
        return value


# --- one log over SSE, resumed ------------------------------------------------------------


@dataclass(frozen=True)
class _Log(Generic[E]):
    """Which log a source reads: its event union, endpoints and id header."""

    noun: str
    parse: Callable[[object], E]
    id_of: Callable[[E], Optional[str]]
    is_last: Callable[[E], bool]
    id_header: str
    events_path: Callable[[str], str]
    cancel_path: Callable[[str], str]


def _execution_id_of(ev: ExecutionEvent) -> Optional[str]:
    return ev.execution_id if isinstance(ev, StartEvent) else None


def _run_id_of(ev: AgentEvent) -> Optional[str]:
    return ev.run_id if isinstance(ev, AgentStartEvent) else None


_EXECUTION_LOG: _Log[ExecutionEvent] = _Log(
    noun="execution",
    parse=parse_execution_event,
    id_of=_execution_id_of,
    is_last=lambda ev: isinstance(ev, DoneEvent),
    id_header="sluice-execution-id",
    events_path=lambda i: f"/api/executions/{quote(i, safe='')}/events",
    cancel_path=lambda i: f"/api/executions/{quote(i, safe='')}/cancel",
)

_AGENT_LOG: _Log[AgentEvent] = _Log(
    noun="agent run",
    parse=parse_agent_event,
    id_of=_run_id_of,
    is_last=lambda ev: isinstance(ev, AgentEndEvent),
    id_header="sluice-agent-run-id",
    events_path=lambda i: f"/api/agent-runs/{quote(i, safe='')}/events",
    cancel_path=lambda i: f"/api/agent-runs/{quote(i, safe='')}/cancel",
)


@dataclass(frozen=True)
class _Start:
    """A POST that starts the work (``path``, ``body``), or an existing log (``log_id``) from ``from_seq``."""

    path: str = ""
    body: object = None
    idempotency_key: str = ""
    log_id: Optional[str] = None
    from_seq: int = 1


def _retryable(err: SluiceError) -> bool:
    """Worth another attempt: the network, silence, or a gateway/overload status."""
    if isinstance(err, (SluiceConnectionError, SluiceTimeoutError)):
        return True
    return err.code != "LLM_UNAVAILABLE" and err.status in (502, 503, 504)


class _AsyncSource(Generic[E]):
    """Reads one log over SSE; ``next()`` yields each event once, in order, resuming dropped
    connections (see the module docstring)."""

    def __init__(self, http: _HTTP, start: _Start, log: _Log[E], reconnect: Reconnect, heartbeat_timeout: float) -> None:
        self._http = http
        self._start = start
        self._log: _Log[E] = log
        self._reconnect = reconnect
        self._heartbeat_timeout = heartbeat_timeout
        #: The log's id, once the server named it.
        self.id: Optional[str] = start.log_id
        #: The last seq delivered.
        self.last_seq = start.from_seq - 1 if start.log_id is not None else 0
        self._decoder = SSEDecoder()
        self._response: Optional[httpx.Response] = None
        self._chunks: Optional[AsyncIterator[bytes]] = None
        # Complete events of the last chunk read, not delivered yet: bounded by one chunk.
        self._pending: Deque[E] = deque()
        self._failures = 0
        self._last_failure: Optional[SluiceError] = None
        #: The last event was delivered (or the server said nothing follows).
        self.ended = False
        #: The SDK could not follow the log (malformed event, reconnections given up): the work
        #: may still run, so leaving still cancels it.
        self.failed = False
        self.closed = False

    async def next(self) -> Optional[E]:
        """The next event not delivered yet, or None once the log is over or the source closed."""
        try:
            return await self._pull()
        except SluiceError:
            # The log cannot be followed any more; the work goes on unless the stream's leave cancels it.
            self.failed = True
            await self._release()
            raise
        except BaseException:
            # Interrupted (a task cancelled, Ctrl-C): the reader leaves, which may cancel the work.
            await self._release()
            raise

    async def ensure_started(self) -> Optional[str]:
        """Opens the stream if nothing did yet, so the server names the log; returns its id."""
        if self.id is None and not self.ended and not self.failed and not self.closed and self._chunks is None:
            try:
                await self._connect()
            except SluiceError:
                self.failed = True
                await self._release()
                raise
        return self.id

    async def _pull(self) -> Optional[E]:
        while True:
            if self.closed:
                return None
            if self._pending:
                ev = self._pending.popleft()
                if ev.seq <= self.last_seq:
                    continue  # a replay after a retried start or a resume
                self.last_seq = ev.seq
                self._failures = 0
                if self.id is None:
                    self.id = self._log.id_of(ev)
                if self._log.is_last(ev):
                    self.ended = True
                    await self._release()
                return ev
            if self.ended or self.failed:
                return None
            if self._chunks is None:
                await self._connect()
                continue
            chunk = await self._read(self._chunks)
            if chunk is None:
                self._failures += 1
                await self._release()
                continue
            self._decode(chunk)

    async def _connect(self) -> None:
        """Opens a connection, retrying with backoff; leaves ``_chunks`` set, or ``ended`` after a 204."""
        while True:
            if self._failures > 0:
                if self._failures > self._reconnect.max_attempts:
                    raise self._given_up()
                retry_after = self._last_failure.retry_after if self._last_failure is not None else None
                await sleep(backoff_delay(self._failures, self._reconnect, retry_after=retry_after))
            try:
                response = await self._open()
            except SluiceError as err:
                if self.closed or not _retryable(err):
                    raise
                self._failures += 1
                self._last_failure = err
                continue
            if response is None:
                self.ended = True
                return
            self._response = response
            self._chunks = response.aiter_bytes()
            return

    async def _open(self) -> Optional[httpx.Response]:
        """One attempt: the start (until the log has an id) or a resume; None after a 204."""
        # Only the silence between chunks is bounded: the server pings every `heartbeat` seconds.
        if self.id is None:
            response = await self._http.send(
                "POST",
                self._start.path,
                json=self._start.body,
                headers={"accept": "text/event-stream", "idempotency-key": self._start.idempotency_key},
                stream=True,
                read_timeout=self._heartbeat_timeout,
            )
            named = response.headers.get(self._log.id_header)
            if named:
                self.id = named
            # A retried start replays the log from seq 1: last_seq drops what was delivered.
        else:
            headers = {"accept": "text/event-stream"}
            if self.last_seq > 0:
                headers["last-event-id"] = str(self.last_seq)
            response = await self._http.send(
                "GET",
                self._log.events_path(self.id),
                headers=headers,
                stream=True,
                read_timeout=self._heartbeat_timeout,
                accept=(204,),
            )
            if response.status_code == 204:
                # The log is over and nothing follows what was delivered.
                await response.aclose()
                return None
        self._decoder.end()
        return response

    async def _read(self, chunks: AsyncIterator[bytes]) -> Optional[bytes]:
        """The next chunk, or None when the connection is lost (ended early, failed, went silent)."""
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            self._last_failure = SluiceConnectionError(f"the stream ended before the {self._log.noun} was over")
        except httpx.TimeoutException:
            self._last_failure = SluiceTimeoutError(
                f"no data and no heartbeat for {self._heartbeat_timeout} s (heartbeat_timeout)"
            )
        except httpx.HTTPError as err:
            self._last_failure = SluiceConnectionError(f"the stream broke off: {err!r}")
        return None

    def _decode(self, chunk: bytes) -> None:
        try:
            messages = self._decoder.push(chunk)
        except ValueError as err:
            raise InternalError(f"the event stream is malformed: {err}") from err
        for msg in messages:
            if msg.data == "":
                continue
            try:
                value: object = _json.loads(msg.data)
            except ValueError as err:
                raise InternalError(f"an event is not JSON: {msg.data[:120]}") from err
            self._pending.append(self._log.parse(value))

    async def cancel(self, timeout: Optional[float] = None) -> None:
        """Asks the server to stop the work (idempotent); the log goes on to its last event. Before
        the work was started nothing is sent, and the stream ends with no events."""
        if self.id is None:
            if self._chunks is None:
                self.ended = True
            return
        await self._http.send("POST", self._log.cancel_path(self.id), timeout=timeout)

    async def close(self) -> None:
        """Releases the connection; no effect on the work. Idempotent."""
        self.closed = True
        self._pending.clear()
        await self._release()

    async def _release(self) -> None:
        response = self._response
        self._response = None
        self._chunks = None
        if response is not None:
            try:
                await response.aclose()
            except httpx.HTTPError:
                pass  # closing a broken connection: nothing left to release

    def _given_up(self) -> SluiceConnectionError:
        n = self._reconnect.max_attempts
        what = f"{self._log.noun} {self.id}" if self.id else f"the {self._log.noun}"
        return SluiceConnectionError(
            f"lost the stream of {what} after {n} reconnection attempt{'' if n == 1 else 's'} "
            f"(Reconnect.max_attempts): {self._last_failure}"
        )


class _Leaver(Protocol):
    """A stream the client cancels when it is closed while the stream's work still runs."""

    async def _leave(self) -> None: ...


_L = TypeVar("_L", bound=_Leaver)


class _AsyncLogStream(Generic[E, R]):
    """What execution and agent streams share: one reader, the fold, leaving (cancel or detach)."""

    def __init__(self, source: _AsyncSource[E], fold: R, add: Callable[[E], None], cancel_on_leave: bool) -> None:
        self._source: _AsyncSource[E] = source
        self._fold: R = fold
        # The fold's own add, typed by the event union (R alone does not tie its add to E).
        self._add: Callable[[E], None] = add
        self._cancel_on_leave = cancel_on_leave
        self._detached = False

    async def _next(self) -> Optional[E]:
        ev = await self._source.next()
        if ev is not None:
            self._add(ev)
            try:
                await self._on(ev)
            except BaseException:
                await self._leave()
                raise
        return ev

    async def _on(self, ev: E) -> None:
        """The callbacks of one event (overridden)."""

    async def _events(self) -> AsyncIterator[E]:
        finished = False
        try:
            while True:
                ev = await self._next()
                if ev is None:
                    finished = True
                    return
                yield ev
        finally:
            # `break`, an exception in the loop, or the iterator being garbage-collected.
            if not finished:
                await self._leave()

    def __aiter__(self) -> AsyncIterator[E]:
        return self._events()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._leave()

    def _cancels_on_leave(self) -> bool:
        """Leaving now would cancel: started, not over (a failed stream's work may still run),
        not left yet, not detached, not only watched."""
        source = self._source
        return (
            source.id is not None
            and not source.ended
            and not source.closed
            and self._cancel_on_leave
            and not self._detached
        )

    async def _leave(self) -> None:
        """Stops reading: cancels the work unless it is over, detached or only watched."""
        source = self._source
        if self._cancels_on_leave():
            try:
                await source.cancel(timeout=min(_LEAVE_TIMEOUT, source._http.timeout))
            except SluiceError:
                pass  # best effort: the server's on_disconnect and timeout still bound the run
            except RuntimeError:
                # httpx refuses requests once the client is closed (a collected async generator
                # is closed after the client's aclose()); that aclose() cancelled it already.
                if not source._http.client.is_closed:
                    raise
        await source.close()

    def __del__(self) -> None:
        # Collected while its work runs (``start()``, or a read stopped without leaving): leaving
        # never came, so cancel now, best effort (the async client schedules it on the running loop).
        try:
            source = self._source
            if self._cancels_on_leave() and source.id is not None:
                cancel_when_collected(
                    source._http.client, source._log.cancel_path(source.id), min(_LEAVE_TIMEOUT, source._http.timeout)
                )
        except Exception:
            pass  # a finalizer must not raise (a half-built stream, interpreter shutdown)

    async def start(self) -> str:
        """Starts the work if iterating did not yet, and returns its id."""
        log_id = await self._source.ensure_started()
        if log_id is None:
            raise SluiceConnectionError("the server did not name the stream's log")
        return log_id

    async def cancel(self) -> None:
        """Asks the server to stop; iterating goes on to the last event (``reason`` cancelled)."""
        await self._source.cancel()

    async def detach(self) -> Optional[str]:
        """Leaves the stream without cancelling: the work goes on (follow it again with
        ``attach(id, from_seq=last_seq + 1)``). Returns its id."""
        self._detached = True
        log_id = self._source.id
        await self._source.close()
        return log_id

    @property
    def last_seq(self) -> int:
        """The seq of the last event delivered (0 before any)."""
        return self._source.last_seq

    async def _drain(self) -> R:
        try:
            while (await self._next()) is not None:
                pass
        except BaseException:
            await self._leave()
            raise
        return self._fold


class AsyncExecutionStream(_AsyncLogStream[ExecutionEvent, RunResult]):
    """One execution's events, live: ``async for ev in stream`` yields typed events once each,
    in ``seq`` order, ``DoneEvent`` last. Leaving the loop early (``break``, an exception, the
    iterator being collected) cancels the execution unless ``detach()`` was called. The run
    starts on the first iteration (or ``start()``, ``result()``)."""

    def __init__(
        self,
        source: _AsyncSource[ExecutionEvent],
        cancel_on_leave: bool,
        on_stdout: Optional[Callback],
        on_stderr: Optional[Callback],
        on_progress: Optional[Callable[[ProgressEvent], object]],
        on_result: Optional[Callable[[ResultEvent], object]],
        on_error: Optional[Callable[[ErrorEvent], object]],
        on_event: Optional[Callable[[ExecutionEvent], object]],
    ) -> None:
        fold = RunResult()
        super().__init__(source, fold, fold.add, cancel_on_leave)
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._on_progress = on_progress
        self._on_result = on_result
        self._on_error = on_error
        self._on_event = on_event

    @property
    def execution_id(self) -> Optional[str]:
        """The execution's id, once the server named it (after ``start()`` or the first event)."""
        return self._source.id

    async def _on(self, ev: ExecutionEvent) -> None:
        if self._on_event is not None:
            await maybe_await(self._on_event(ev))
        if isinstance(ev, StdoutEvent) and self._on_stdout is not None:
            await maybe_await(self._on_stdout(ev.content))
        elif isinstance(ev, StderrEvent) and self._on_stderr is not None:
            await maybe_await(self._on_stderr(ev.content))
        elif isinstance(ev, ProgressEvent) and self._on_progress is not None:
            await maybe_await(self._on_progress(ev))
        elif isinstance(ev, ResultEvent) and self._on_result is not None:
            await maybe_await(self._on_result(ev))
        elif isinstance(ev, ErrorEvent) and self._on_error is not None:
            await maybe_await(self._on_error(ev))

    async def result(self) -> RunResult:
        """Reads the stream to its end and returns the fold (what was read so far included)."""
        return await self._drain()

    async def stdin(self, data: str, *, eof: bool = False) -> None:
        """Writes to the program's stdin (open when the run gave no ``stdin``); ``eof`` closes it."""
        execution_id = await self.start()
        body: Dict[str, object] = {"data": data}
        if eof:
            body["eof"] = True
        await self._source._http.send("POST", f"/api/executions/{quote(execution_id, safe='')}/stdin", json=body)

    async def close_stdin(self) -> None:
        """Sends end of file to the program's stdin."""
        await self.stdin("", eof=True)


class AsyncCommandStream:
    """A shell command's output as lines (``Line``: a ``str`` with ``.stream``, ``stdout`` or
    ``stderr``), yielded as the command prints them. A line longer than 1 MiB arrives in
    pieces, so memory stays bounded. ``result`` and ``exit_code`` are set once it is over."""

    _MAX_LINE = 1024 * 1024

    def __init__(self, stream: AsyncExecutionStream) -> None:
        self._stream = stream
        self.result: Optional[RunResult] = None

    @property
    def exit_code(self) -> Optional[int]:
        """The command's exit status, once it ended."""
        return self.result.exit_code if self.result is not None else None

    @property
    def execution_id(self) -> Optional[str]:
        return self._stream.execution_id

    def __aiter__(self) -> AsyncIterator[Line]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[Line]:
        tails = {"stdout": "", "stderr": ""}
        finished = False
        try:
            while True:
                ev = await self._stream._next()
                if ev is None:
                    finished = True
                    for name in ("stdout", "stderr"):
                        if tails[name]:
                            yield Line(tails[name], name)
                    self.result = self._stream._fold
                    return
                if not isinstance(ev, (StdoutEvent, StderrEvent)):
                    continue
                text = tails[ev.type] + ev.content
                *complete, rest = text.split("\n")
                for line in complete:
                    yield Line(line, ev.type)
                while len(rest) > self._MAX_LINE:
                    yield Line(rest[: self._MAX_LINE], ev.type)
                    rest = rest[self._MAX_LINE :]
                tails[ev.type] = rest
        finally:
            if not finished:
                await self._stream._leave()

    async def cancel(self) -> None:
        """Stops the command (SIGTERM to its tree, then SIGKILL); the lines go on to the end."""
        await self._stream.cancel()

    async def wait(self) -> RunResult:
        """Reads to the end (discarding lines not read yet) and returns the result."""
        self.result = await self._stream.result()
        return self.result


class AsyncAgentStream(_AsyncLogStream[AgentEvent, AgentResult]):
    """One agent run's events, live (the A3S Code shape): ``async for ev in stream`` with
    ``ev.type == "text_delta"`` → ``ev.text``, ``tool_start``/``tool_end`` → ``ev.tool_name``,
    ``ev.exit_code``, ``end`` → ``ev.total_tokens``. Leaving early cancels the run unless
    ``detach()`` was called; ``cancel()`` stops it and the loop goes on to ``end``."""

    def __init__(
        self,
        source: _AsyncSource[AgentEvent],
        cancel_on_leave: bool,
        on_event: Optional[Callable[[AgentEvent], object]],
        on_text: Optional[Callback],
        on_error: Optional[Callable[[AgentErrorEvent], object]],
    ) -> None:
        fold = AgentResult()
        super().__init__(source, fold, fold.add, cancel_on_leave)
        self._on_event = on_event
        self._on_text = on_text
        self._on_error = on_error

    @property
    def run_id(self) -> Optional[str]:
        """The run's id, once the server named it."""
        return self._source.id

    async def _on(self, ev: AgentEvent) -> None:
        if self._on_event is not None:
            await maybe_await(self._on_event(ev))
        if isinstance(ev, TextDeltaEvent) and self._on_text is not None:
            await maybe_await(self._on_text(ev.text))
        elif isinstance(ev, AgentErrorEvent) and self._on_error is not None:
            await maybe_await(self._on_error(ev))

    async def result(self) -> AgentResult:
        """Reads the run to its ``end`` and returns the fold."""
        return await self._drain()


# --- options ------------------------------------------------------------------------------


def _check_positive(name: str, value: Optional[float]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"{name}: expected a number of seconds > 0, got {value!r}")


def _run_body(
    code: str,
    language: Optional[str],
    mode: Optional[str],
    timeout: Optional[float],
    stdin: Optional[str],
    env: Optional[Mapping[str, str]],
    heartbeat: Optional[float],
) -> Dict[str, object]:
    if not isinstance(code, str):
        raise TypeError(f"code: expected a string, got {type(code).__name__}")
    body: Dict[str, object] = {"code": code}
    if language is not None:
        body["language"] = language
    if mode is not None:
        if mode not in ("kernel", "process"):
            raise ValueError(f'mode: expected "kernel" or "process", got {mode!r}')
        body["mode"] = mode
    _check_positive("timeout", timeout)
    if timeout is not None:
        body["timeout"] = timeout
    if stdin is not None:
        body["stdin"] = stdin
    if env is not None:
        body["env"] = dict(env)
    if heartbeat is not None:
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)) or heartbeat < 1:
            raise ValueError(f"heartbeat: expected seconds >= 1, got {heartbeat!r}")
        body["heartbeat"] = heartbeat
    return body


def _workspace_path(path: str, what: str = "path") -> str:
    """A path relative to the workspace, from a relative one or an absolute one under /workspace
    (as the code inside the sandbox sees it). ``.``, ``..`` and empty segments are refused:
    httpx removes dot segments from the URL, so ``../../x`` would leave the files API and name
    another resource (``DELETE /api/sessions/x`` deletes a session)."""
    if not isinstance(path, str) or path == "":
        raise ValueError(f"{what}: expected a path relative to the workspace or under /workspace, got {path!r}")
    rel = path
    if rel.startswith("/"):
        if rel.rstrip("/") == "/workspace":
            return ""
        if not rel.startswith("/workspace/"):
            raise ValueError(f"{what}: expected a path relative to the workspace or under /workspace, got {path!r}")
        rel = rel[len("/workspace/") :]
    if any(seg in ("", ".", "..") for seg in rel.split("/")):
        raise ValueError(f"{what}: expected a path without '.', '..' or empty segments, got {path!r}")
    return rel


# --- the client ---------------------------------------------------------------------------


class AsyncFiles:
    """``session.files``: the session's workspace (``/workspace``) from outside. Paths are
    relative to it, or absolute under ``/workspace``; bytes go through untouched."""

    def __init__(self, http: _HTTP, session_id: str) -> None:
        self._http = http
        self._base = f"/api/sessions/{quote(session_id, safe='')}/files"

    def _file(self, path: str) -> str:
        rel = _workspace_path(path)
        if rel == "":
            raise ValueError(f"path: expected a file under the workspace, got {path!r}")
        return self._base + "/" + "/".join(quote(seg, safe="") for seg in rel.split("/"))

    async def write(self, path: str, data: Union[bytes, str]) -> int:
        """Writes a file (parent directories are created); a str is written as UTF-8. Returns its size."""
        content = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        value = await self._http.json(
            "PUT", self._file(path), content=content, headers={"content-type": "application/octet-stream"}
        )
        size = value.get("size") if isinstance(value, dict) else None
        return size if isinstance(size, int) else len(content)

    async def read(self, path: str) -> bytes:
        """A file's bytes."""
        response = await self._http.send("GET", self._file(path))
        return response.content

    async def read_text(self, path: str) -> str:
        """A file as UTF-8 text (invalid bytes become U+FFFD)."""
        return (await self.read(path)).decode("utf-8", "replace")

    async def list(self, dir: Optional[str] = None) -> List[FileEntry]:
        """The entries of a workspace directory (the workspace itself by default)."""
        rel = _workspace_path(dir, "dir") if dir is not None else ""
        value = await self._http.json("GET", self._base, params={"dir": rel} if rel else None)
        entries = value.get("entries") if isinstance(value, dict) else None
        if not isinstance(entries, list):
            raise InternalError(f"the files listing has no entries: {value!r:.200}")
        return [read_file_entry(e) for e in entries]

    async def delete(self, path: str) -> None:
        """Deletes a file, or a directory and everything in it."""
        await self._http.send("DELETE", self._file(path))


class AsyncCommands:
    """``session.commands``: shell commands (bash, a fresh process each), line by line."""

    def __init__(self, session: "AsyncSession") -> None:
        self._session = session

    def stream(
        self,
        command: str,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Optional[str] = None,
    ) -> AsyncCommandStream:
        """Runs ``command`` and yields its output lines as they are printed."""
        return AsyncCommandStream(
            self._session.stream(command, language="bash", mode="process", timeout=timeout, env=env, stdin=stdin)
        )

    async def run(
        self,
        command: str,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Optional[str] = None,
        on_stdout: Optional[Callback] = None,
        on_stderr: Optional[Callback] = None,
    ) -> RunResult:
        """Runs ``command`` to its end; a non-zero exit is a result (``exit_code``), not an exception."""
        return await self._session.run(
            command,
            "bash",
            mode="process",
            timeout=timeout,
            env=env,
            stdin=stdin,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
        )


class AsyncAgent:
    """``session.agent``: an LLM that writes and runs code in the session (docs/python.md)."""

    def __init__(self, client: "AsyncSluice", session_id: str) -> None:
        self._client = client
        self._session_id = session_id

    def stream(
        self,
        prompt: str,
        *,
        system: Optional[str] = None,
        model: Optional[str] = None,
        max_turns: Optional[int] = None,
        tools: Optional[Sequence[str]] = None,
        language: Optional[str] = None,
        timeout: Optional[float] = None,
        heartbeat: Optional[float] = None,
        cancel_on_leave: bool = True,
        idempotency_key: Optional[str] = None,
        reconnect: Optional[Reconnect] = None,
        on_event: Optional[Callable[[AgentEvent], object]] = None,
        on_text: Optional[Callback] = None,
        on_error: Optional[Callable[[AgentErrorEvent], object]] = None,
    ) -> AsyncAgentStream:
        """Starts an agent run (on the first iteration) and streams its events."""
        if not isinstance(prompt, str) or prompt == "":
            raise ValueError(f"prompt: expected a non-empty string, got {prompt!r}")
        body: Dict[str, object] = {"prompt": prompt}
        if system is not None:
            body["system"] = system
        if model is not None:
            body["model"] = model
        if max_turns is not None:
            if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
                raise ValueError(f"max_turns: expected an integer >= 1, got {max_turns!r}")
            body["max_turns"] = max_turns
        if tools is not None:
            body["tools"] = list(tools)
        if language is not None:
            body["language"] = language
        _check_positive("timeout", timeout)
        if timeout is not None:
            body["timeout"] = timeout
        if heartbeat is not None:
            body["heartbeat"] = heartbeat
        start = _Start(
            path=f"/api/sessions/{quote(self._session_id, safe='')}/agent",
            body=body,
            idempotency_key=idempotency_key or _new_id(),
        )
        source = self._client._source(start, _AGENT_LOG, reconnect, heartbeat)
        return self._client._track(AsyncAgentStream(source, cancel_on_leave, on_event, on_text, on_error))

    async def run(
        self,
        prompt: str,
        *,
        system: Optional[str] = None,
        model: Optional[str] = None,
        max_turns: Optional[int] = None,
        tools: Optional[Sequence[str]] = None,
        language: Optional[str] = None,
        timeout: Optional[float] = None,
        heartbeat: Optional[float] = None,
        cancel_on_leave: bool = True,
        idempotency_key: Optional[str] = None,
        reconnect: Optional[Reconnect] = None,
        on_event: Optional[Callable[[AgentEvent], object]] = None,
        on_text: Optional[Callback] = None,
        on_error: Optional[Callable[[AgentErrorEvent], object]] = None,
    ) -> AgentResult:
        """Runs the agent to its ``end`` and returns the fold; a cancelled or failed run is a
        result. The options are ``stream()``'s, spelled out so type checkers see them."""
        stream = self.stream(
            prompt,
            system=system,
            model=model,
            max_turns=max_turns,
            tools=tools,
            language=language,
            timeout=timeout,
            heartbeat=heartbeat,
            cancel_on_leave=cancel_on_leave,
            idempotency_key=idempotency_key,
            reconnect=reconnect,
            on_event=on_event,
            on_text=on_text,
            on_error=on_error,
        )
        return await stream.result()

    def attach(self, run_id: str, *, from_seq: int = 1, cancel_on_leave: bool = False) -> AsyncAgentStream:
        """Follows an existing run from ``from_seq`` (inclusive); leaving only stops watching."""
        _check_from(from_seq)
        source = self._client._source(_Start(log_id=run_id, from_seq=from_seq), _AGENT_LOG, None, None)
        return self._client._track(AsyncAgentStream(source, cancel_on_leave, None, None, None))

    async def get(self, run_id: str) -> Dict[str, JSON]:
        """A run's state and the fold so far (``GET /api/agent-runs/{id}``), as the server says it."""
        value = await self._client._http.json("GET", f"/api/agent-runs/{quote(run_id, safe='')}")
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}

    async def cancel(self, run_id: str) -> None:
        """Stops a run by id (idempotent)."""
        await self._client._http.send("POST", f"/api/agent-runs/{quote(run_id, safe='')}/cancel")

    async def reset(self) -> None:
        """Forgets the session's conversation (files and kernels stay)."""
        await self._client._http.send("DELETE", f"/api/sessions/{quote(self._session_id, safe='')}/agent")


def _check_from(from_seq: int) -> None:
    if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 1:
        raise ValueError(f"from_seq: expected the first seq wanted, an integer >= 1, got {from_seq!r}")


class AsyncSession:
    """A session handle: ``run()`` / ``stream()`` code, ``commands``, ``files``, ``agent``."""

    def __init__(self, client: "AsyncSluice", session_id: str, info: Optional[SessionInfo] = None) -> None:
        self._client = client
        #: The session's id.
        self.id = session_id
        #: What the server last said about it (None for a bare handle until ``refresh()``).
        self.info = info
        self.files = AsyncFiles(client._http, session_id)
        self.commands = AsyncCommands(self)
        self.agent = AsyncAgent(client, session_id)

    def __repr__(self) -> str:
        return f"AsyncSession(id={self.id!r})"

    def stream(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        mode: Optional[str] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        heartbeat: Optional[float] = None,
        cancel_on_leave: bool = True,
        idempotency_key: Optional[str] = None,
        reconnect: Optional[Reconnect] = None,
        on_stdout: Optional[Callback] = None,
        on_stderr: Optional[Callback] = None,
        on_progress: Optional[Callable[[ProgressEvent], object]] = None,
        on_result: Optional[Callable[[ResultEvent], object]] = None,
        on_error: Optional[Callable[[ErrorEvent], object]] = None,
        on_event: Optional[Callable[[ExecutionEvent], object]] = None,
    ) -> AsyncExecutionStream:
        """Runs code and streams its events (the run starts on the first iteration)."""
        body = _run_body(code, language, mode, timeout, stdin, env, heartbeat)
        start = _Start(
            path=f"/api/sessions/{quote(self.id, safe='')}/stream",
            body=body,
            idempotency_key=idempotency_key or _new_id(),
        )
        source = self._client._source(start, _EXECUTION_LOG, reconnect, heartbeat)
        return self._client._track(
            AsyncExecutionStream(source, cancel_on_leave, on_stdout, on_stderr, on_progress, on_result, on_error, on_event)
        )

    async def run(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        mode: Optional[str] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
        reconnect: Optional[Reconnect] = None,
        on_stdout: Optional[Callback] = None,
        on_stderr: Optional[Callback] = None,
        on_progress: Optional[Callable[[ProgressEvent], object]] = None,
        on_result: Optional[Callable[[ResultEvent], object]] = None,
        on_error: Optional[Callable[[ErrorEvent], object]] = None,
        on_event: Optional[Callable[[ExecutionEvent], object]] = None,
    ) -> RunResult:
        """Runs code to its end; callbacks fire as output arrives. A non-zero exit, a timeout or
        a cancel is a result (``reason``, ``success``), not an exception."""
        stream = self.stream(
            code,
            language,
            timeout=timeout,
            mode=mode,
            stdin=stdin,
            env=env,
            idempotency_key=idempotency_key,
            reconnect=reconnect,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_progress=on_progress,
            on_result=on_result,
            on_error=on_error,
            on_event=on_event,
        )
        return await stream.result()

    def attach(self, execution_id: str, *, from_seq: int = 1, cancel_on_leave: bool = False) -> AsyncExecutionStream:
        """Follows an execution (one started elsewhere, or detached) from ``from_seq`` (inclusive)."""
        _check_from(from_seq)
        source = self._client._source(_Start(log_id=execution_id, from_seq=from_seq), _EXECUTION_LOG, None, None)
        return self._client._track(AsyncExecutionStream(source, cancel_on_leave, None, None, None, None, None, None))

    async def refresh(self) -> SessionInfo:
        """Fetches the session's state into ``info``."""
        self.info = read_session_info(await self._client._http.json("GET", f"/api/sessions/{quote(self.id, safe='')}"))
        return self.info

    async def restart(self) -> List[str]:
        """Restarts the session's kernels (state lost, files kept); returns the languages restarted."""
        value = await self._client._http.json("POST", f"/api/sessions/{quote(self.id, safe='')}/restart")
        restarted = value.get("restarted") if isinstance(value, dict) else None
        return [str(x) for x in restarted] if isinstance(restarted, list) else []

    async def delete(self) -> None:
        """Destroys the session: every process killed, the workspace removed."""
        await self._client.sessions.delete(self.id)


class AsyncSessions:
    """``client.sessions``: create, get, list, delete."""

    def __init__(self, client: "AsyncSluice") -> None:
        self._client = client

    async def create(
        self,
        *,
        id: Optional[str] = None,
        language: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        idle_ttl: Optional[float] = None,
        network: Optional[bool] = None,
        limits: Optional[Mapping[str, int]] = None,
    ) -> AsyncSession:
        """Creates a session (``POST /api/sessions``)."""
        body: Dict[str, object] = {}
        if id is not None:
            body["id"] = id
        if language is not None:
            body["language"] = language
        if env is not None:
            body["env"] = dict(env)
        _check_positive("timeout", timeout)
        if timeout is not None:
            body["timeout"] = timeout
        _check_positive("idle_ttl", idle_ttl)
        if idle_ttl is not None:
            body["idle_ttl"] = idle_ttl
        if network is not None:
            body["network"] = network
        if limits is not None:
            body["limits"] = dict(limits)
        info = read_session_info(await self._client._http.json("POST", "/api/sessions", json=body))
        return AsyncSession(self._client, info.id, info)

    async def get(self, session_id: str) -> AsyncSession:
        """The session ``session_id`` with its current ``info``; NotFoundError when it does not exist."""
        session = AsyncSession(self._client, session_id)
        await session.refresh()
        return session

    async def list(self) -> List[SessionInfo]:
        """Every session of this API key."""
        value = await self._client._http.json("GET", "/api/sessions")
        sessions = value.get("sessions") if isinstance(value, dict) else None
        if not isinstance(sessions, list):
            raise InternalError(f"the sessions listing has no sessions: {value!r:.200}")
        return [read_session_info(s) for s in sessions]

    async def delete(self, session_id: str) -> None:
        """Destroys a session (every process killed, the workspace removed)."""
        await self._client._http.send("DELETE", f"/api/sessions/{quote(session_id, safe='')}")


class AsyncSluice:
    """The asyncio client. ``base_url`` and ``api_key`` default to ``SLUICE_URL`` (else
    http://127.0.0.1:8080) and ``SLUICE_API_KEY``. Use it as ``async with AsyncSluice() as
    client:`` or call ``aclose()``.

    ``timeout`` bounds each request that is not a stream (seconds); a stream's connection is
    taken for dead after ``heartbeat_timeout`` seconds without a byte (the server pings every
    15 s) and resumed by ``reconnect``'s policy."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        heartbeat_timeout: float = 45.0,
        reconnect: Optional[Reconnect] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        _check_positive("timeout", timeout)
        _check_positive("heartbeat_timeout", heartbeat_timeout)
        url = base_url if base_url is not None else os.environ.get("SLUICE_URL") or DEFAULT_URL
        key = api_key if api_key is not None else os.environ.get("SLUICE_API_KEY") or None
        self._http = _HTTP(url, key, timeout, headers or {})
        self._heartbeat_timeout = heartbeat_timeout
        self._reconnect = reconnect or Reconnect()
        # Every stream made by this client, weakly: closing the client cancels those still running.
        self._streams: "weakref.WeakSet[_Leaver]" = weakref.WeakSet()
        self.sessions = AsyncSessions(self)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def session(self, session_id: str) -> AsyncSession:
        """A handle on a session without a request (a run on a new id creates it)."""
        return AsyncSession(self, session_id)

    def _source(
        self, start: _Start, log: _Log[E], reconnect: Optional[Reconnect], heartbeat: Optional[float]
    ) -> _AsyncSource[E]:
        # Silence is a lost connection only well past the pings the run asked for.
        silence = self._heartbeat_timeout if heartbeat is None else max(self._heartbeat_timeout, 3 * heartbeat)
        return _AsyncSource(self._http, start, log, reconnect or self._reconnect, silence)

    def _track(self, stream: _L) -> _L:
        self._streams.add(stream)
        return stream

    async def languages(self) -> List[Dict[str, JSON]]:
        """The runtimes of this server (``GET /api/languages``)."""
        value = await self._http.json("GET", "/api/languages")
        langs = value.get("languages") if isinstance(value, dict) else None
        return [{str(k): v for k, v in x.items()} for x in langs if isinstance(x, dict)] if isinstance(langs, list) else []

    async def execution(self, execution_id: str) -> Dict[str, JSON]:
        """An execution's state and its fold so far (``GET /api/executions/{id}``)."""
        value = await self._http.json("GET", f"/api/executions/{quote(execution_id, safe='')}")
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}

    async def cancel(self, execution_id: str) -> None:
        """Stops an execution by id (SIGTERM to its tree, SIGKILL after a grace period)."""
        await self._http.send("POST", f"/api/executions/{quote(execution_id, safe='')}/cancel")

    async def aclose(self) -> None:
        """Cancels the streams whose leaving would cancel (started, not over, not detached; best
        effort), then closes the connection pool: an async generator left by ``break`` is closed
        by the loop later, when the pool could no longer send its cancel."""
        for stream in list(self._streams):
            await stream._leave()
        await self._http.client.aclose()

    async def __aenter__(self) -> "AsyncSluice":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__: Tuple[str, ...] = (
    "AsyncSluice",
    "AsyncSessions",
    "AsyncSession",
    "AsyncExecutionStream",
    "AsyncCommandStream",
    "AsyncAgentStream",
    "AsyncFiles",
    "AsyncCommands",
    "AsyncAgent",
)
