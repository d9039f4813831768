"""Incremental ``text/event-stream`` decoder, exactly the WHATWG HTML rules (§9.2.5 "Parsing an
event stream", §9.2.6 "Interpreting an event stream"), fed one network chunk at a time: a chunk
may end inside a multi-byte character, between the CR and LF of a CRLF, or inside a field name.
The same rules as the TypeScript protocol package's decoder (packages/protocol/src/sse-decoder.ts).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import List, Optional

#: Longest line accepted by default, in decoded characters: an event holds at most 64 KiB of
#: output, at most 6x that once JSON-escaped.
DEFAULT_MAX_LINE = 4 * 1024 * 1024

_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched event, as an ``EventSource`` would deliver it."""

    #: The last event ID at dispatch time (it persists until an ``id`` field changes it).
    id: str
    #: The event type; ``message`` when the event had no (or an empty) ``event`` field.
    event: str
    #: The ``data`` lines joined with LF.
    data: str
    #: Set when this event's own lines carried a valid ``retry`` field (milliseconds).
    retry: Optional[int] = None


class SSEDecoder:
    """Streaming SSE parser: ``push()`` each chunk, ``end()`` when the body ends (a reconnection
    may then reuse it, keeping ``last_event_id`` as an ``EventSource`` does)."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line: expected a positive number of characters, got {max_line}")
        self._max_line = max_line
        self._new_stream()
        self._last_event_id = ""
        self._id_buffer = ""
        self.retry: Optional[int] = None

    def _new_stream(self) -> None:
        # errors="replace": invalid bytes become U+FFFD (§9.2.5 "UTF-8 decode"); one decoder per
        # connection, so a character split across chunks waits for its other bytes.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True
        self._after_cr = False
        self._partial = ""
        self._data: List[str] = []
        self._data_len = 0
        self._has_data = False
        self._event_type = ""
        self._pending_retry: Optional[int] = None

    @property
    def last_event_id(self) -> str:
        """Updated when an event is dispatched (or would be, had it data); send it as ``Last-Event-ID``."""
        return self._last_event_id

    def push(self, chunk: bytes) -> List[SSEMessage]:
        """Feeds one chunk; returns the events it completed.

        Raises ``ValueError`` when a line or an event's data goes over the bound."""
        out: List[SSEMessage] = []
        self._feed(self._utf8.decode(chunk, False), out)
        return out

    def end(self) -> List[SSEMessage]:
        """Ends the stream. An event not terminated by a blank line is discarded (§9.2.6), so this
        returns nothing; the decoder is then ready for the next connection's stream."""
        out: List[SSEMessage] = []
        self._feed(self._utf8.decode(b"", True), out)
        last = self._last_event_id
        self._new_stream()
        # Browsers seed a reconnection's ID buffer with the last ID (the spec says ""), so a
        # first event without an `id` field does not forget it.
        self._id_buffer = last
        return out

    def _feed(self, text: str, out: List[SSEMessage]) -> None:
        n = len(text)
        if n == 0:
            return  # keep _after_cr: the LF may come in a later chunk
        pos = 0
        if self._at_start:
            self._at_start = False
            if text[0] == _BOM:
                pos = 1
        if self._after_cr:
            self._after_cr = False
            if pos < n and text[pos] == "\n":
                pos += 1
        # The next CR and LF are searched again only once passed: a text without CR would
        # otherwise be rescanned to its end for every line (quadratic in the chunk size).
        cr = text.find("\r", pos)
        lf = text.find("\n", pos)
        while pos < n:
            if cr != -1 and cr < pos:
                cr = text.find("\r", pos)
            if lf != -1 and lf < pos:
                lf = text.find("\n", pos)
            if cr == -1 and lf == -1:
                tail = text[pos:]
                if len(self._partial) + len(tail) > self._max_line:
                    self._too_long()
                self._partial += tail
                return
            eol = lf if cr == -1 else cr if lf == -1 else min(cr, lf)
            line = text[pos:eol]
            if self._partial:
                line = self._partial + line
                self._partial = ""
            if len(line) > self._max_line:
                self._too_long()
            if text[eol] == "\r":
                if eol + 1 == n:
                    # Whether this CR is half of a CRLF is known only with the next chunk.
                    self._after_cr = True
                    pos = n
                else:
                    pos = eol + 2 if text[eol + 1] == "\n" else eol + 1
            else:
                pos = eol + 1
            self._line(line, out)

    def _line(self, line: str, out: List[SSEMessage]) -> None:
        if not line:
            self._dispatch(out)
            return
        colon = line.find(":")
        if colon == 0:
            return  # a comment (": ping")
        if colon == -1:
            field, value = line, ""
        else:
            field = line[:colon]
            # Only one leading U+0020 is removed, never a tab.
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == " " else line[colon + 1 :]
        if field == "event":
            self._event_type = value
        elif field == "data":
            if self._data_len + len(value) + 1 > self._max_line:
                self._data = []
                self._data_len = 0
                raise ValueError(f"SSE event data is longer than {self._max_line} characters")
            self._data.append(value)
            self._data_len += len(value) + 1
            self._has_data = True
        elif field == "id":
            # An id with NUL is ignored, so it can always be sent back in a header.
            if "\0" not in value:
                self._id_buffer = value
        elif field == "retry":
            # ASCII digits only (at least one); str.isdigit() would accept other scripts' digits.
            if value and all("0" <= c <= "9" for c in value):
                self.retry = int(value)
                self._pending_retry = self.retry
        # Unknown field names are ignored; names are case-sensitive.

    def _dispatch(self, out: List[SSEMessage]) -> None:
        # An id-only block still updates the last event ID.
        self._last_event_id = self._id_buffer
        retry = self._pending_retry
        self._pending_retry = None
        if not self._has_data:
            self._event_type = ""
            return
        data = "\n".join(self._data)
        out.append(SSEMessage(self._last_event_id, self._event_type or "message", data, retry))
        self._data = []
        self._data_len = 0
        self._has_data = False
        self._event_type = ""

    def _too_long(self) -> None:
        self._partial = ""
        raise ValueError(f"SSE line is longer than {self._max_line} characters; refusing to buffer it")
