"""docs/python.md shows no Python that is not an example file (each one runs in the tests, on
every Python the package supports), and the events example runs."""

from __future__ import annotations

import re

from _servers import REPO_ROOT, SluiceServer
from test_examples import run_example


def test_every_python_block_of_the_docs_is_an_example_file() -> None:
    docs = (REPO_ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"(.*)\n```python\n", docs)
    assert blocks
    for before in blocks:
        m = re.fullmatch(r"<!-- example: (python/examples/[\w.]+\.py) -->", before)
        assert m is not None, f"a Python block of docs/python.md is not an example file (after {before!r})"
        assert (REPO_ROOT / m.group(1)).is_file(), m.group(1)


def test_events(server: SluiceServer) -> None:
    out = run_example("events.py", server)
    assert out == "line 0\nline 1\nline 2\nexited 0\n"
