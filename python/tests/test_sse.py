"""The SSE decoder against the spec's rules, with every chunk boundary a network may make."""

from __future__ import annotations

from typing import List

import pytest

from sluice import SSEDecoder, SSEMessage

# CRLF, CR and LF endings, a BOM, comments, multi-byte characters (2, 3 and 4 bytes), ids, retry.
STREAM = (
    "\ufeff: connected\r\n"
    "retry: 1000\r\n"
    "\r\n"
    "id: 1\r\n"
    "event: stdout\r\n"
    'data: {"content":"h\u00e9llo \u20ac \U0001d11e"}\r\n'
    "\r\n"
    ": ping\r"
    "id: 2\r"
    "event: stderr\r"
    "data: a\r"
    "data:b\r"
    "\r"
    "id: 3\n"
    "data\n"
    "\n"
    "data: no id line keeps the last id\n"
    "\n"
).encode("utf-8")

EXPECTED = [
    SSEMessage("1", "stdout", '{"content":"h\u00e9llo \u20ac \U0001d11e"}', None),
    SSEMessage("2", "stderr", "a\nb", None),
    SSEMessage("3", "message", "", None),
    SSEMessage("3", "message", "no id line keeps the last id", None),
]


def decode(chunks: List[bytes]) -> List[SSEMessage]:
    d = SSEDecoder()
    out: List[SSEMessage] = []
    for c in chunks:
        out += d.push(c)
    out += d.end()
    return out


def test_whole_stream() -> None:
    d = SSEDecoder()
    assert d.push(STREAM) == EXPECTED
    assert d.last_event_id == "3"
    assert d.retry == 1000


def test_every_split_point_gives_the_same_events() -> None:
    # Splits inside multi-byte characters, between CR and LF, inside field names.
    for i in range(len(STREAM) + 1):
        assert decode([STREAM[:i], STREAM[i:]]) == EXPECTED, f"split at byte {i}"


def test_byte_by_byte() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_three_way_splits_around_the_crlf_and_the_four_byte_character() -> None:
    clef = STREAM.index("\U0001d11e".encode())
    crlf = STREAM.index(b"\r\n\r\nid: 1")
    for a in range(clef - 1, clef + 5):
        for b in range(crlf, crlf + 4):
            lo, hi = sorted((a, b))
            assert decode([STREAM[:lo], STREAM[lo:hi], STREAM[hi:]]) == EXPECTED


def test_field_rules() -> None:
    d = SSEDecoder()
    out = d.push(b"data:  two spaces keep one\n\nid: a\0b\ndata: x\n\nretry: 12a\nretry: \ndata: y\nevent: e\n\n")
    assert out[0].data == " two spaces keep one"
    assert out[1].id == ""  # an id with NUL is ignored
    assert d.retry is None  # not only ASCII digits
    assert out[2] == SSEMessage("", "e", "y", None)


def test_an_unterminated_event_is_discarded_at_the_end_and_the_id_survives_a_reconnection() -> None:
    d = SSEDecoder()
    assert d.push(b"id: 7\ndata: done\n\ndata: half") == [SSEMessage("7", "message", "done", None)]
    assert d.end() == []
    assert d.push(b"data: next\n\n") == [SSEMessage("7", "message", "next", None)]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert decode([b"data: a\xffb\xe2\x82\n\n"]) == [SSEMessage("", "message", "a\ufffdb\ufffd", None)]


def test_a_huge_event_is_refused_rather_than_buffered() -> None:
    d = SSEDecoder(max_line=1024)
    d.push(b"data: " + b"x" * 1000)
    with pytest.raises(ValueError, match="longer than 1024"):
        d.push(b"y" * 100)


def test_a_large_event_in_many_chunks() -> None:
    payload = ("\u00e9" * 200_000).encode()
    raw = b"data: " + payload + b"\n\n"
    chunks = [raw[i : i + 8191] for i in range(0, len(raw), 8191)]
    assert decode(chunks) == [SSEMessage("", "message", "\u00e9" * 200_000, None)]
