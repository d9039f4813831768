"""One real Sluice server (real sandboxes) for the whole run, with a scripted model behind its
agent runs; a cutting proxy per test that needs one."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import pytest
from _servers import Proxy, ScriptedLLM, SluiceServer

from sluice import AsyncSluice, Reconnect, Sluice


@pytest.fixture(scope="session")
def llm() -> Iterator[ScriptedLLM]:
    model = ScriptedLLM()
    model.start()
    yield model
    model.stop()


@pytest.fixture(scope="session")
def server(llm: ScriptedLLM) -> Iterator[SluiceServer]:
    s = SluiceServer(
        {
            "SLUICE_LLM_BASE_URL": llm.base_url,
            "SLUICE_LLM_MODEL": "scripted-model",
            "SLUICE_LLM_API_KEY": "sk-test-python",
            # One run may wait behind the running one: the third is SESSION_BUSY (test_errors).
            "SLUICE_MAX_QUEUE": "1",
        }
    )
    yield s
    s.stop()


@pytest.fixture
def client(server: SluiceServer) -> Iterator[Sluice]:
    with Sluice(server.url) as c:
        yield c


@pytest.fixture
async def aclient(server: SluiceServer) -> AsyncIterator[AsyncSluice]:
    async with AsyncSluice(server.url) as c:
        yield c


@pytest.fixture
def proxy(server: SluiceServer) -> Iterator[Proxy]:
    p = Proxy(server.url)
    yield p
    p.close()


#: Fast retries for the tests that cut connections.
FAST_RECONNECT = Reconnect(max_attempts=8, initial_delay=0.05, max_delay=0.5)
