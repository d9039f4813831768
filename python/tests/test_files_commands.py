"""Files round trip byte for byte; commands stream line by line as they are printed."""

from __future__ import annotations

import asyncio
from typing import List, Tuple

import pytest

from sluice import AsyncSluice, NotFoundError, Sluice

BLOB = bytes(range(256)) * 4096 + b"\x00\xff\xfe"  # 1 MiB and a bit, every byte value


def test_files_round_trip_binary_sync(client: Sluice) -> None:
    session = client.sessions.create()
    assert session.files.write("/workspace/data/blob.bin", BLOB) == len(BLOB)
    session.files.write("data/hello.txt", "h\u00e9llo")
    check = session.run("import hashlib\nprint(hashlib.sha256(open('data/blob.bin','rb').read()).hexdigest())", mode="process")
    import hashlib

    assert check.stdout.strip() == hashlib.sha256(BLOB).hexdigest()
    session.run("open('data/made.bin','wb').write(bytes([0, 1, 255]))", mode="process")
    assert session.files.read("/workspace/data/made.bin") == b"\x00\x01\xff"
    assert session.files.read("data/blob.bin") == BLOB
    assert session.files.read_text("data/hello.txt") == "h\u00e9llo"
    entries = {e.path: e for e in session.files.list("/workspace/data")}
    assert entries["data/blob.bin"].size == len(BLOB) and entries["data/blob.bin"].type == "file"
    session.files.delete("data")
    with pytest.raises(NotFoundError):
        session.files.read("data/blob.bin")
    with pytest.raises(ValueError, match="under /workspace"):
        session.files.read("/etc/passwd")
    session.delete()


async def test_files_round_trip_binary_async(aclient: AsyncSluice) -> None:
    session = await aclient.sessions.create()
    await session.files.write("b.bin", BLOB)
    assert await session.files.read("b.bin") == BLOB
    assert [e.name for e in await session.files.list()] == ["b.bin"]
    await session.delete()


SCRIPT = "echo one; echo oops >&2; while [ ! -f go ]; do sleep 0.02; done; printf 'two\\nthree'; exit 3"


def test_commands_stream_line_by_line_sync(client: Sluice) -> None:
    session = client.sessions.create()
    lines: List[Tuple[str, str]] = []
    stream = session.commands.stream(SCRIPT, timeout=30)
    for line in stream:
        lines.append((line.stream, str(line)))
        if line == "one":
            # The command waits for this file: "two" can only come after "one" was yielded.
            session.files.write("go", "")
    assert lines == [("stdout", "one"), ("stderr", "oops"), ("stdout", "two"), ("stdout", "three")]
    assert stream.exit_code == 3
    result = session.commands.run("echo hi; exit 0")
    assert result.stdout == "hi\n" and result.exit_code == 0
    session.delete()


async def test_commands_stream_line_by_line_async(aclient: AsyncSluice) -> None:
    session = await aclient.sessions.create()
    got: List[str] = []
    async for line in session.commands.stream(SCRIPT, timeout=30):
        got.append(f"{line.stream}:{line}")
        if line == "one":
            await session.files.write("go", "")
    assert got == ["stdout:one", "stderr:oops", "stdout:two", "stdout:three"]
    await session.delete()


async def test_concurrent_streams_in_one_async_client(aclient: AsyncSluice) -> None:
    async def one(tag: str) -> str:
        session = await aclient.sessions.create()
        text = ""
        code = f"import time\nfor i in range(20):\n    print('{tag}', i, flush=True)\n    time.sleep(0.01)"
        async for ev in session.stream(code, mode="process"):
            if ev.type == "stdout":
                text += ev.content
        await session.delete()
        return text

    tags = ["alpha", "beta", "gamma", "delta"]
    outputs = await asyncio.gather(*(one(t) for t in tags))
    for tag, out in zip(tags, outputs):
        assert out == "".join(f"{tag} {i}\n" for i in range(20))
