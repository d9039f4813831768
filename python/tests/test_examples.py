"""Every example in python/examples runs against the real server, and docs/python.md shows
each one exactly as it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _servers import REPO_ROOT, ScriptedLLM, SluiceServer, text_reply, tool_call_reply

EXAMPLES = REPO_ROOT / "python" / "examples"


def run_example(name: str, server: SluiceServer) -> str:
    env = {**os.environ, "SLUICE_URL": server.url}
    env.pop("SLUICE_API_KEY", None)
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_quickstart(server: SluiceServer) -> None:
    out = run_example("quickstart.py", server)
    assert "3.5" in out and "50% working" in out and "2\n" in out


def test_agb_callbacks(server: SluiceServer) -> None:
    out = run_example("agb_callbacks.py", server)
    assert "[stdout] step 0" in out and "[stderr] almost done" in out and "success=True exit_code=0" in out


def test_hopx_commands(server: SluiceServer) -> None:
    out = run_example("hopx_commands.py", server)
    assert "stdout: processed batch 2" in out and "async stdout: processed batch 0" in out and "async stderr: done" in out


def test_a3s_agent(server: SluiceServer, llm: ScriptedLLM) -> None:
    llm.push(tool_call_reply("run_code", {"code": "print(6 * 7)"}, "call_example"), text_reply("6 * 7 = 42."))
    out = run_example("a3s_agent.py", server)
    assert "[run_code running]" in out and "[run_code running]\n42\n[run_code exit 0]" in out and "6 * 7 = 42." in out and "[complete: 65 tokens]" in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_the_docs_show_the_example_as_it_is(name: str) -> None:
    docs = (REPO_ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    body = (EXAMPLES / name).read_text(encoding="utf-8")
    blocks = re.findall(rf"<!-- example: python/examples/{re.escape(name)} -->\n```python\n(.*?)```", docs + readme, re.S)
    assert blocks, f"docs/python.md (or README.md) shows no python/examples/{name}"
    assert all(b == body for b in blocks), f"the docs' copy of {name} differs from the file"
