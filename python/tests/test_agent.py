"""Agent runs against the scripted model: the A3S-shaped stream, its fold, cancel."""

from __future__ import annotations

import time
from typing import List

from _servers import ScriptedLLM, text_reply, tool_call_reply

from sluice import (
    AgentEndEvent,
    AgentEvent,
    AsyncSluice,
    Sluice,
    TextDeltaEvent,
    ToolEndEvent,
    ToolOutputDeltaEvent,
    ToolStartEvent,
    TurnEndEvent,
)


def test_agent_stream_runs_code_and_answers(client: Sluice, llm: ScriptedLLM) -> None:
    llm.push(tool_call_reply("run_code", {"code": "print(6 * 7)"}, "call_py_1"), text_reply("The answer is 42."))
    session = client.sessions.create()
    events: List[AgentEvent] = []
    text = ""
    for event in session.agent.stream("What is 6 * 7? Check it with Python."):
        events.append(event)
        if event.type == "text_delta":
            text += event.text
    types = [e.type for e in events]
    assert types[0] == "agent_start" and types[-1] == "end"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    start = next(e for e in events if isinstance(e, ToolStartEvent))
    assert start.tool_name == "run_code" and start.input == {"code": "print(6 * 7)"}
    output = "".join(e.text for e in events if isinstance(e, ToolOutputDeltaEvent))
    assert output == "42\n"
    end_tool = next(e for e in events if isinstance(e, ToolEndEvent))
    assert end_tool.exit_code == 0 and end_tool.tool_name == "run_code"
    turn_ends = [e for e in events if isinstance(e, TurnEndEvent)]
    assert [t.usage.total_tokens for t in turn_ends] == [40, 25]
    end = events[-1]
    assert isinstance(end, AgentEndEvent)
    assert end.reason == "completed" and end.total_tokens == 65 and end.text == "The answer is 42."
    assert text == "The answer is 42."
    assert llm.pending() == 0
    session.delete()


def test_agent_run_folds_the_tool_calls(client: Sluice, llm: ScriptedLLM) -> None:
    llm.push(tool_call_reply("write_file", {"path": "note.txt", "content": "hi"}, "call_py_2"), text_reply("Written."))
    session = client.sessions.create()
    result = session.agent.run("Write hi to note.txt")
    assert result.completed and result.text == "Written." and result.turns == 2
    assert [(c.tool_name, c.exit_code) for c in result.tool_calls] == [("write_file", 0)]
    assert session.files.read_text("note.txt") == "hi"
    session.delete()


async def test_agent_cancel_ends_the_run_cancelled(aclient: AsyncSluice, llm: ScriptedLLM) -> None:
    # The model says a word, then stalls: only a cancel ends the run.
    llm.push([{"text": "Thinking"}, "stall"])
    session = await aclient.sessions.create()
    stream = session.agent.stream("Think forever")
    last = None
    started = time.monotonic()
    async for event in stream:
        if isinstance(event, TextDeltaEvent):
            await stream.cancel()
        last = event
    assert isinstance(last, AgentEndEvent) and last.reason == "cancelled" and last.text == "Thinking"
    assert time.monotonic() - started < 30
    await session.delete()
