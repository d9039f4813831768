"""The event logs as typed values: one frozen dataclass per event type with a ``type`` literal,
so ``ev.type == "stdout"``, ``isinstance(ev, StdoutEvent)`` and ``match ev: case
StdoutEvent(content=text):`` all work. Wire names are kept (snake_case). Inbound JSON is
``object`` until ``parse_execution_event`` / ``parse_agent_event`` narrow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Mapping, Optional, Union

from ._errors import InternalError

#: A decoded JSON value (``application/json`` results, progress data, tool input): narrow it
#: with isinstance before use.
JSON = object


# --- execution events (docs/events.md) ---------------------------------------------------


@dataclass(frozen=True)
class StartEvent:
    """The code began to run."""

    seq: int
    ts: int
    execution_id: str
    session_id: str
    language: str
    mode: str
    type: Literal["start"] = field(default="start", init=False)


@dataclass(frozen=True)
class StdoutEvent:
    """Text the program wrote to stdout (coalesced by time, not by line)."""

    seq: int
    ts: int
    content: str
    type: Literal["stdout"] = field(default="stdout", init=False)


@dataclass(frozen=True)
class StderrEvent:
    """Text the program wrote to stderr."""

    seq: int
    ts: int
    content: str
    type: Literal["stderr"] = field(default="stderr", init=False)


@dataclass(frozen=True)
class ProgressEvent:
    """Structured progress the code sent (``from sluice import progress`` inside the sandbox)."""

    seq: int
    ts: int
    message: Optional[str] = None
    percent: Optional[float] = None
    data: JSON = None
    type: Literal["progress"] = field(default="progress", init=False)


@dataclass(frozen=True)
class ResultEvent:
    """A rich value: MIME type → data (``text/plain``, ``image/png`` base64, ``application/json``)."""

    seq: int
    ts: int
    data: Dict[str, JSON]
    type: Literal["result"] = field(default="result", init=False)


@dataclass(frozen=True)
class TruncatedEvent:
    """Output went over the output limit: the middle of ``stream`` was dropped."""

    seq: int
    ts: int
    stream: str
    dropped_bytes: int
    type: Literal["truncated"] = field(default="truncated", init=False)


@dataclass(frozen=True)
class GapEvent:
    """The server's bounded log no longer held events ``from_seq``..``to_seq``."""

    seq: int
    ts: int
    from_seq: int
    to_seq: int
    type: Literal["gap"] = field(default="gap", init=False)


@dataclass(frozen=True)
class DoneEvent:
    """The last event: every process of the execution is gone."""

    seq: int
    ts: int
    exit_code: Optional[int]
    duration: str
    duration_ms: int
    reason: str
    signal: Optional[str] = None
    kernel_restarted: bool = False
    type: Literal["done"] = field(default="done", init=False)


@dataclass(frozen=True)
class ErrorEvent:
    """The execution could not run; ``done`` follows."""

    seq: int
    ts: int
    error: str
    code: str
    type: Literal["error"] = field(default="error", init=False)


#: One entry of an execution's event log.
ExecutionEvent = Union[
    StartEvent, StdoutEvent, StderrEvent, ProgressEvent, ResultEvent, TruncatedEvent, GapEvent, DoneEvent, ErrorEvent
]


# --- agent events (DESIGN "Agent runs") --------------------------------------------------


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one model call, or of a run so far."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class AgentStartEvent:
    """The first event of every run."""

    seq: int
    ts: int
    run_id: str
    session_id: str
    model: str
    type: Literal["agent_start"] = field(default="agent_start", init=False)


@dataclass(frozen=True)
class TurnStartEvent:
    """A model call begins (turns count from 1)."""

    seq: int
    ts: int
    turn: int
    type: Literal["turn_start"] = field(default="turn_start", init=False)


@dataclass(frozen=True)
class TextDeltaEvent:
    """Text the model streamed."""

    seq: int
    ts: int
    text: str
    type: Literal["text_delta"] = field(default="text_delta", init=False)


@dataclass(frozen=True)
class ToolInputDeltaEvent:
    """The next piece of a tool call's arguments, as the model streams them."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    text: str
    type: Literal["tool_input_delta"] = field(default="tool_input_delta", init=False)


@dataclass(frozen=True)
class ToolStartEvent:
    """A tool call begins to run, with its parsed arguments."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    input: Dict[str, JSON]
    type: Literal["tool_start"] = field(default="tool_start", init=False)


@dataclass(frozen=True)
class ToolOutputDeltaEvent:
    """Output of the code a ``run_code`` call runs, while it runs."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    stream: str
    text: str
    execution_id: str
    type: Literal["tool_output_delta"] = field(default="tool_output_delta", init=False)


@dataclass(frozen=True)
class ToolProgressEvent:
    """A ``progress`` event of the code a ``run_code`` call runs."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    execution_id: str
    message: Optional[str] = None
    percent: Optional[float] = None
    data: JSON = None
    type: Literal["tool_progress"] = field(default="tool_progress", init=False)


@dataclass(frozen=True)
class ToolResultEvent:
    """A ``result`` event of the code a ``run_code`` call runs."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    execution_id: str
    data: Dict[str, JSON]
    type: Literal["tool_result"] = field(default="tool_result", init=False)


@dataclass(frozen=True)
class ToolEndEvent:
    """A tool call finished; ``tool_output`` is what the model is told."""

    seq: int
    ts: int
    tool_id: str
    tool_name: str
    tool_output: str
    exit_code: Optional[int]
    reason: str
    execution_id: Optional[str] = None
    type: Literal["tool_end"] = field(default="tool_end", init=False)


@dataclass(frozen=True)
class TurnEndEvent:
    """A model call finished; ``total_tokens`` counts the whole run so far."""

    seq: int
    ts: int
    turn: int
    usage: TokenUsage
    total_tokens: int
    type: Literal["turn_end"] = field(default="turn_end", init=False)


@dataclass(frozen=True)
class AgentGapEvent:
    """The server's bounded log no longer held events ``from_seq``..``to_seq``."""

    seq: int
    ts: int
    from_seq: int
    to_seq: int
    type: Literal["gap"] = field(default="gap", init=False)


@dataclass(frozen=True)
class AgentErrorEvent:
    """The run failed (``LLM_UNAVAILABLE``, ``LLM_ERROR``…); ``end`` follows."""

    seq: int
    ts: int
    error: str
    code: str
    type: Literal["error"] = field(default="error", init=False)


@dataclass(frozen=True)
class AgentEndEvent:
    """The last event of every run: the final answer and the run's totals."""

    seq: int
    ts: int
    text: str
    total_tokens: int
    usage: TokenUsage
    turns: int
    reason: str
    type: Literal["end"] = field(default="end", init=False)


#: One entry of an agent run's event log.
AgentEvent = Union[
    AgentStartEvent,
    TurnStartEvent,
    TextDeltaEvent,
    ToolInputDeltaEvent,
    ToolStartEvent,
    ToolOutputDeltaEvent,
    ToolProgressEvent,
    ToolResultEvent,
    ToolEndEvent,
    TurnEndEvent,
    AgentGapEvent,
    AgentErrorEvent,
    AgentEndEvent,
]


# --- the one validator at the edge --------------------------------------------------------


class _Fields:
    """Reads typed fields of one event object; a wrong one is the server's bug (InternalError)."""

    def __init__(self, obj: Mapping[str, object]) -> None:
        self.obj = obj
        kind = obj.get("type")
        self.kind = kind if isinstance(kind, str) else "?"

    def _bad(self, key: str, expected: str) -> InternalError:
        return InternalError(f"a {self.kind} event is malformed: {key}: expected {expected}, got {self.obj.get(key)!r}")

    def s(self, key: str) -> str:
        v = self.obj.get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a string")
        return v

    def opt_s(self, key: str) -> Optional[str]:
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self._bad(key, "a string or null")
        return v

    def i(self, key: str) -> int:
        v = self.obj.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, "an integer")
        return v

    def opt_i(self, key: str) -> Optional[int]:
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, "an integer or null")
        return v

    def opt_num(self, key: str) -> Optional[float]:
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise self._bad(key, "a number")
        return v  # an int stays an int (50, not 50.0): both are floats to the type checker

    def obj_field(self, key: str) -> Dict[str, JSON]:
        v = self.obj.get(key)
        if not isinstance(v, dict):
            raise self._bad(key, "an object")
        return {str(k): val for k, val in v.items()}

    def usage(self, key: str) -> TokenUsage:
        u = _Fields(self.obj_field(key))
        u.kind = self.kind
        return TokenUsage(u.i("prompt_tokens"), u.i("completion_tokens"), u.i("total_tokens"))


def _fields(value: object) -> _Fields:
    if not isinstance(value, dict):
        raise InternalError(f"an event is not a JSON object: {value!r:.120}")
    return _Fields({str(k): v for k, v in value.items()})


def parse_execution_event(value: object) -> ExecutionEvent:
    """Narrows one decoded event of an execution's log; raises InternalError when malformed."""
    f = _fields(value)
    seq, ts = f.i("seq"), f.i("ts")
    t = f.kind
    if t == "start":
        return StartEvent(seq, ts, f.s("execution_id"), f.s("session_id"), f.s("language"), f.s("mode"))
    if t == "stdout":
        return StdoutEvent(seq, ts, f.s("content"))
    if t == "stderr":
        return StderrEvent(seq, ts, f.s("content"))
    if t == "progress":
        return ProgressEvent(seq, ts, f.opt_s("message"), f.opt_num("percent"), f.obj.get("data"))
    if t == "result":
        return ResultEvent(seq, ts, f.obj_field("data"))
    if t == "truncated":
        return TruncatedEvent(seq, ts, f.s("stream"), f.i("dropped_bytes"))
    if t == "gap":
        return GapEvent(seq, ts, f.i("from_seq"), f.i("to_seq"))
    if t == "done":
        return DoneEvent(
            seq,
            ts,
            f.opt_i("exit_code"),
            f.s("duration"),
            f.i("duration_ms"),
            f.s("reason"),
            f.opt_s("signal"),
            f.obj.get("kernel_restarted") is True,
        )
    if t == "error":
        return ErrorEvent(seq, ts, f.s("error"), f.s("code"))
    raise InternalError(f"an event has an unknown type: {t!r}")


def parse_agent_event(value: object) -> AgentEvent:
    """Narrows one decoded event of an agent run's log; raises InternalError when malformed."""
    f = _fields(value)
    seq, ts = f.i("seq"), f.i("ts")
    t = f.kind
    if t == "agent_start":
        return AgentStartEvent(seq, ts, f.s("run_id"), f.s("session_id"), f.s("model"))
    if t == "turn_start":
        return TurnStartEvent(seq, ts, f.i("turn"))
    if t == "text_delta":
        return TextDeltaEvent(seq, ts, f.s("text"))
    if t == "tool_input_delta":
        return ToolInputDeltaEvent(seq, ts, f.s("tool_id"), f.s("tool_name"), f.s("text"))
    if t == "tool_start":
        return ToolStartEvent(seq, ts, f.s("tool_id"), f.s("tool_name"), f.obj_field("input"))
    if t == "tool_output_delta":
        return ToolOutputDeltaEvent(
            seq, ts, f.s("tool_id"), f.s("tool_name"), f.s("stream"), f.s("text"), f.s("execution_id")
        )
    if t == "tool_progress":
        return ToolProgressEvent(
            seq,
            ts,
            f.s("tool_id"),
            f.s("tool_name"),
            f.s("execution_id"),
            f.opt_s("message"),
            f.opt_num("percent"),
            f.obj.get("data"),
        )
    if t == "tool_result":
        return ToolResultEvent(seq, ts, f.s("tool_id"), f.s("tool_name"), f.s("execution_id"), f.obj_field("data"))
    if t == "tool_end":
        return ToolEndEvent(
            seq,
            ts,
            f.s("tool_id"),
            f.s("tool_name"),
            f.s("tool_output"),
            f.opt_i("exit_code"),
            f.s("reason"),
            f.opt_s("execution_id"),
        )
    if t == "turn_end":
        return TurnEndEvent(seq, ts, f.i("turn"), f.usage("usage"), f.i("total_tokens"))
    if t == "gap":
        return AgentGapEvent(seq, ts, f.i("from_seq"), f.i("to_seq"))
    if t == "error":
        return AgentErrorEvent(seq, ts, f.s("error"), f.s("code"))
    if t == "end":
        return AgentEndEvent(seq, ts, f.s("text"), f.i("total_tokens"), f.usage("usage"), f.i("turns"), f.s("reason"))
    raise InternalError(f"an agent event has an unknown type: {t!r}")
