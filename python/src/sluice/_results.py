"""What a finished run is: the fold of its event log (``RunResult``, ``AgentResult``), built
event by event as a stream is read, and the views of sessions and files the API answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ._events import (
    JSON,
    AgentEndEvent,
    AgentErrorEvent,
    AgentEvent,
    AgentGapEvent,
    AgentStartEvent,
    DoneEvent,
    ErrorEvent,
    ExecutionEvent,
    GapEvent,
    ProgressEvent,
    ResultEvent,
    StartEvent,
    StderrEvent,
    StdoutEvent,
    TextDeltaEvent,
    TokenUsage,
    ToolEndEvent,
    ToolInputDeltaEvent,
    ToolOutputDeltaEvent,
    ToolProgressEvent,
    ToolResultEvent,
    ToolStartEvent,
    TruncatedEvent,
    TurnEndEvent,
    TurnStartEvent,
)
from ._errors import InternalError


def _joined(pieces: List[str]) -> str:
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


def assert_never(value: object) -> None:
    """The end of an exhaustive chain over a closed union: reached only by a type added to the
    union and not handled."""
    raise InternalError(f"unhandled event: {value!r}")


@dataclass(frozen=True)
class ErrorInfo:
    """An ``error`` event's code and message: the run could not run (or the model failed)."""

    code: str
    message: str


@dataclass
class RunResult:
    """How an execution ended, and everything it printed. A non-zero exit, a timeout or a
    cancel is a result (``reason``), never an exception."""

    execution_id: str = ""
    #: The program's exit status (128 + n after signal n); None if it never ran.
    exit_code: Optional[int] = None
    #: ``exited``, ``signaled``, ``timeout``, ``cancelled``, ``memory_limit``, ``output_limit``, ``error``, ``sandbox_lost`` (scale-out: the worker running it died).
    reason: str = ""
    signal: Optional[str] = None
    #: ``result(...)`` values and trailing expressions: MIME type → data, in order.
    results: List[Dict[str, JSON]] = field(default_factory=list)
    progress: List[ProgressEvent] = field(default_factory=list)
    duration_ms: int = 0
    truncated: bool = False
    dropped_bytes: Dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    error: Optional[ErrorInfo] = None
    #: Events were skipped because the server's bounded log no longer held them.
    gap: bool = False
    kernel_restarted: bool = False
    # Output as pieces, joined on first read: `str +=` on an attribute copies the whole text
    # for every event (quadratic for a large output).
    _stdout: List[str] = field(default_factory=list, repr=False)
    _stderr: List[str] = field(default_factory=list, repr=False)

    @property
    def stdout(self) -> str:
        """Everything the program wrote to stdout."""
        return _joined(self._stdout)

    @property
    def stderr(self) -> str:
        """Everything the program wrote to stderr."""
        return _joined(self._stderr)

    def __repr__(self) -> str:
        return (
            f"RunResult(execution_id={self.execution_id!r}, reason={self.reason!r}, exit_code={self.exit_code!r}, "
            f"stdout={self.stdout[:200]!r}, stderr={self.stderr[:200]!r}, results={len(self.results)})"
        )

    @property
    def success(self) -> bool:
        """The program exited by itself with status 0."""
        return self.reason == "exited" and self.exit_code == 0

    @property
    def execution_time(self) -> float:
        """Wall time in seconds."""
        return self.duration_ms / 1000

    @property
    def timed_out(self) -> bool:
        return self.reason == "timeout"

    @property
    def cancelled(self) -> bool:
        return self.reason == "cancelled"

    def add(self, ev: ExecutionEvent) -> None:
        """Folds one event in (log order)."""
        if isinstance(ev, StartEvent):
            self.execution_id = ev.execution_id
        elif isinstance(ev, StdoutEvent):
            self._stdout.append(ev.content)
        elif isinstance(ev, StderrEvent):
            self._stderr.append(ev.content)
        elif isinstance(ev, ProgressEvent):
            self.progress.append(ev)
        elif isinstance(ev, ResultEvent):
            self.results.append(ev.data)
        elif isinstance(ev, TruncatedEvent):
            self.truncated = True
            self.dropped_bytes[ev.stream] = self.dropped_bytes.get(ev.stream, 0) + ev.dropped_bytes
        elif isinstance(ev, GapEvent):
            self.gap = True
        elif isinstance(ev, DoneEvent):
            self.exit_code = ev.exit_code
            self.reason = ev.reason
            self.signal = ev.signal
            self.duration_ms = ev.duration_ms
            self.kernel_restarted = ev.kernel_restarted
        elif isinstance(ev, ErrorEvent):
            self.error = ErrorInfo(ev.code, ev.error)
        else:
            assert_never(ev)


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an agent run, as its ``tool_start`` and ``tool_end`` told it."""

    tool_id: str
    tool_name: str
    input: Dict[str, JSON]
    tool_output: str
    exit_code: Optional[int]
    reason: str


@dataclass
class AgentResult:
    """How an agent run ended: its final answer, totals and tool calls. A cancelled or failed
    run is a result (``reason``, ``error``), not an exception."""

    run_id: str = ""
    #: The final answer (the last turn's text).
    text: str = ""
    #: ``completed``, ``max_turns``, ``length``, ``cancelled``, ``error``.
    reason: str = ""
    turns: int = 0
    total_tokens: int = 0
    usage: TokenUsage = field(default_factory=lambda: TokenUsage(0, 0, 0))
    tool_calls: List[ToolCall] = field(default_factory=list)
    error: Optional[ErrorInfo] = None
    gap: bool = False
    _inputs: Dict[str, ToolStartEvent] = field(default_factory=dict, repr=False)

    @property
    def completed(self) -> bool:
        return self.reason == "completed"

    @property
    def cancelled(self) -> bool:
        return self.reason == "cancelled"

    def add(self, ev: AgentEvent) -> None:
        """Folds one event in (log order)."""
        if isinstance(ev, AgentStartEvent):
            self.run_id = ev.run_id
        elif isinstance(ev, TurnStartEvent):
            self.turns = ev.turn
            self.text = ""  # the answer is the last turn's text
        elif isinstance(ev, TextDeltaEvent):
            self.text += ev.text
        elif isinstance(ev, ToolStartEvent):
            self._inputs[ev.tool_id] = ev
        elif isinstance(ev, ToolEndEvent):
            start = self._inputs.pop(ev.tool_id, None)
            self.tool_calls.append(
                ToolCall(ev.tool_id, ev.tool_name, start.input if start else {}, ev.tool_output, ev.exit_code, ev.reason)
            )
        elif isinstance(ev, TurnEndEvent):
            self.total_tokens = ev.total_tokens
        elif isinstance(ev, AgentGapEvent):
            self.gap = True
        elif isinstance(ev, AgentErrorEvent):
            self.error = ErrorInfo(ev.code, ev.error)
        elif isinstance(ev, AgentEndEvent):
            self.text = ev.text
            self.reason = ev.reason
            self.turns = ev.turns
            self.total_tokens = ev.total_tokens
            self.usage = ev.usage
        elif isinstance(ev, (ToolInputDeltaEvent, ToolOutputDeltaEvent, ToolProgressEvent, ToolResultEvent)):
            pass
        else:
            assert_never(ev)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the server describes it (docs/api.md#sessions); env values are never echoed."""

    id: str
    language: str
    state: str
    network: bool
    idle_ttl: Optional[float]
    timeout: Optional[float]
    env_keys: List[str]
    limits: Dict[str, JSON]
    executions: int
    raw: Dict[str, JSON] = field(repr=False)


@dataclass(frozen=True)
class FileEntry:
    """One entry of a workspace directory."""

    name: str
    #: Relative to the workspace.
    path: str
    #: ``file``, ``directory``, ``symlink`` or ``other``.
    type: str
    size: int
    modified_at: str


def _num(v: object) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def read_session_info(value: object) -> SessionInfo:
    """Narrows a session view; raises InternalError when it is not one."""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise InternalError(f"the answer is not a session: {value!r:.200}")
    raw: Dict[str, JSON] = {str(k): v for k, v in value.items()}
    env_keys = raw.get("env_keys")
    limits = raw.get("limits")
    executions = raw.get("executions")
    return SessionInfo(
        id=str(raw["id"]),
        language=str(raw.get("language", "")),
        state=str(raw.get("state", "")),
        network=raw.get("network") is True,
        idle_ttl=_num(raw.get("idle_ttl")),
        timeout=_num(raw.get("timeout")),
        env_keys=[str(k) for k in env_keys] if isinstance(env_keys, list) else [],
        limits={str(k): v for k, v in limits.items()} if isinstance(limits, dict) else {},
        executions=executions if isinstance(executions, int) else 0,
        raw=raw,
    )


def read_file_entry(value: object) -> FileEntry:
    """Narrows one entry of a files listing."""
    if not isinstance(value, dict):
        raise InternalError(f"a file entry is not an object: {value!r:.200}")
    size = value.get("size")
    return FileEntry(
        name=str(value.get("name", "")),
        path=str(value.get("path", "")),
        type=str(value.get("type", "other")),
        size=size if isinstance(size, int) else 0,
        modified_at=str(value.get("modified_at", "")),
    )


class Line(str):
    """One line a command printed, without its newline; ``stream`` says where: ``stdout`` or
    ``stderr``. It is a ``str``, so ``print(line)`` and ``"x" in line`` work."""

    stream: str

    def __new__(cls, text: str, stream: str) -> "Line":
        line = super().__new__(cls, text)
        line.stream = stream
        return line

    def __repr__(self) -> str:
        return f"Line({str.__repr__(self)}, stream={self.stream!r})"
