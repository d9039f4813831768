"""The typed surface: agent.run() takes agent.stream()'s options by name (mypy --strict sees
them), and the blocking client refuses an async callback instead of dropping it."""

from __future__ import annotations

import inspect
from typing import List, Type, Union

import pytest

from sluice import Agent, AsyncAgent, Sluice
from sluice._io_sync import maybe_await


@pytest.mark.parametrize("cls", [Agent, AsyncAgent])
def test_agent_run_spells_out_the_options_of_stream(cls: Union[Type[Agent], Type[AsyncAgent]]) -> None:
    run = inspect.signature(cls.run).parameters
    stream = inspect.signature(cls.stream).parameters
    assert list(run.values()) == list(stream.values())
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in run.values())


def test_the_sync_maybe_await_refuses_an_awaitable() -> None:
    async def callback(text: str) -> None:
        pass

    with pytest.raises(TypeError, match="AsyncSluice"):
        maybe_await(callback("x"))
    maybe_await(None)
    maybe_await(3)


def test_an_async_callback_in_the_blocking_client_is_a_type_error(client: Sluice) -> None:
    seen: List[str] = []

    async def on_stdout(text: str) -> None:
        seen.append(text)

    session = client.sessions.create()
    with pytest.raises(TypeError, match="async def"):
        session.run("print('hello')", "python", on_stdout=on_stdout)
    session.delete()
