"""Files paths never leave the workspace: ``.``, ``..`` and empty segments are a ValueError
before any request (httpx would remove dot segments and reach another endpoint)."""

from __future__ import annotations

import pytest

from sluice import AsyncSluice, NotFoundError, Sluice
from sluice._async_client import _workspace_path

BAD = ["..", ".", "../x", "a/../b", "a/./b", "a//b", "a/", "/workspace/..", "/workspace/../etc", "/workspace//a", "../../other"]


@pytest.mark.parametrize("path", BAD)
def test_dot_and_empty_segments_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="segments"):
        _workspace_path(path)


def test_ordinary_paths_still_pass() -> None:
    assert _workspace_path("a/b.c") == "a/b.c"
    assert _workspace_path("/workspace/.hidden/x..y") == ".hidden/x..y"
    assert _workspace_path("/workspace/") == ""


def test_a_sibling_session_survives_a_traversal_delete(client: Sluice) -> None:
    victim = client.sessions.create()
    attacker = client.sessions.create()
    victim.files.write("keep.txt", "still here")
    with pytest.raises(ValueError):
        attacker.files.delete(f"../../{victim.id}")
    with pytest.raises(ValueError):
        attacker.files.delete(f"/workspace/../../{victim.id}")
    with pytest.raises(ValueError):
        attacker.files.read(f"../../{victim.id}/files/keep.txt")
    with pytest.raises(ValueError):
        attacker.files.write(f"a/../../../{victim.id}/files/keep.txt", "overwritten")
    with pytest.raises(ValueError):
        attacker.files.list(f"../../{victim.id}")
    assert client.sessions.get(victim.id).id == victim.id
    assert victim.files.read_text("keep.txt") == "still here"
    attacker.delete()
    victim.delete()
    with pytest.raises(NotFoundError):
        client.sessions.get(victim.id)


async def test_a_sibling_session_survives_a_traversal_delete_async(aclient: AsyncSluice) -> None:
    victim = await aclient.sessions.create()
    attacker = await aclient.sessions.create()
    with pytest.raises(ValueError):
        await attacker.files.delete(f"../../{victim.id}")
    assert (await aclient.sessions.get(victim.id)).id == victim.id
    await attacker.delete()
    await victim.delete()
