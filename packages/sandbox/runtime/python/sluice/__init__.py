"""Sluice helpers: structured progress and rich results from code running in Sluice.

    from sluice import progress, result
    progress(40, "Loading")          # or progress("Loading"), progress(percent=40, data={...})
    result(fig)                      # a matplotlib figure, a PIL image, a DataFrame, any value

Events go, one JSON object per line, to the file descriptor named by ``SLUICE_EVENTS_FD``
(docs/events.md, "Code -> Sluice channel"). The event takes its place in the log exactly where
the program made it: stdout and stderr are flushed first, and when the fd is Sluice's socket
the line carries ``"sync":true`` and the call returns only once the server has answered one
byte (0x06), that is, once it has read every byte printed before the call and placed the event
after them. A lock keeps each thread's own order.

Outside Sluice (no ``SLUICE_EVENTS_FD``, or it does not name a pipe or socket, as in a child
process that did not inherit it): ``progress`` prints a one-line summary to stderr and
``result`` prints the plain-text form of the value to stdout; nothing is raised.

Standard library only.
"""

import _thread
import base64
import os
import stat
import sys

# Taken at import: a program (or a kernel cell) that patches json must not break its events.
from json import dumps as _dumps

__all__ = ["progress", "result", "display", "mime_bundle", "html", "markdown", "svg", "png", "jpeg"]

# application/json bigger than this is left out, text/plain is cut: an event line must stay
# well below the server's limit, and nobody reads megabytes of repr.
_SIZE_LIMIT = 1 << 20

_fd_state = None  # None: not probed yet; -1: no usable fd; else the fd
_sync = False  # the fd is a socket: the server acknowledges each line that asks for it
_lock = _thread.allocate_lock()  # one write and its acknowledgement at a time
_owed = 0  # acknowledgements not read yet (a KeyboardInterrupt cut a wait short)


def _after_fork():
    global _lock
    _lock = _thread.allocate_lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork)


def _events_fd():
    global _fd_state, _sync
    if _fd_state is None:
        # Worked out in locals and published last: a thread that sees _fd_state set must not
        # see a half-probed value (four threads' first progress() calls race here).
        fd_state, sync = -1, False
        raw = os.environ.get("SLUICE_EVENTS_FD", "")
        if raw.isdigit():
            fd = int(raw)
            try:
                mode = os.fstat(fd).st_mode
                # A child that did not inherit the fd may have something else there: never
                # write events into a user's file.
                if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    fd_state, sync = fd, stat.S_ISSOCK(mode)
            except OSError:
                pass
        _sync = sync
        _fd_state = fd_state
    return _fd_state


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[n:]


def _read_ack(fd):
    """Waits for the server's one-byte acknowledgement; end of file or an error (the server
    or the channel is gone) returns too, never hangs."""
    while True:
        try:
            return os.read(fd, 1)
        except BlockingIOError:
            import select

            select.select([fd], [], [])
        except InterruptedError:
            continue
        except OSError:
            return b""


def _send(fd, line, sync):
    """Writes one event line; with ``sync`` waits for its acknowledgement (and for any an
    interrupted call left unread, so a stale byte never stands in for this line's)."""
    global _owed
    with _lock:
        _flush_std()
        _write_all(fd, line)
        if sync:
            _owed += 1
            while _owed > 0:
                if not _read_ack(fd):
                    _owed = 0
                    break
                _owed -= 1


def _json_default(obj):
    return repr(obj)


def _emit(event):
    """Writes one event line; returns False when there is no events fd."""
    fd = _events_fd()
    if fd < 0:
        return False
    if _sync:
        event = dict(event, sync=True)
    # ASCII-only JSON: any str (lone surrogates included) travels as valid UTF-8.
    line = _dumps(event, separators=(",", ":"), default=_json_default, allow_nan=False).encode("ascii") + b"\n"
    try:
        _send(fd, line, _sync)
    except OSError:
        return False
    return True


def progress(percent=None, message=None, data=None):
    """Reports progress: ``progress(40)``, ``progress(40, "Loading")``, ``progress("Loading")``,
    ``progress(percent=40, message=..., data={...})``. ``percent`` is clamped to 0..100;
    ``data`` is any JSON-able value (other objects are sent as their repr)."""
    if isinstance(percent, str) and message is None:
        percent, message = None, percent
    event = {"type": "progress"}
    if percent is not None:
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise TypeError("progress(percent=...) expects a number from 0 to 100, got %s" % type(percent).__name__)
        if percent == percent:  # NaN carries no information
            event["percent"] = min(100, max(0, percent))
    if message is not None:
        event["message"] = str(message)
    if data is not None:
        event["data"] = data
    try:
        sent = _emit(event)
    except ValueError:  # NaN/inf inside data
        event["data"] = repr(data)
        sent = _emit(event)
    if not sent:
        parts = ["%g%%" % event["percent"]] if "percent" in event else []
        if "message" in event:
            parts.append(event["message"])
        print("[progress] " + " ".join(parts), file=sys.stderr)


def result(value):
    """Sends ``value`` as a rich result (see ``mime_bundle``). ``None`` sends nothing."""
    bundle = mime_bundle(value)
    if bundle is None:
        return
    if not _emit({"type": "result", "data": bundle}):
        print(bundle["text/plain"])


display = result


def _call_repr(value, name):
    method = getattr(type(value), name, None)
    if method is None or isinstance(value, type):
        return None
    try:
        out = getattr(value, name)()
    except Exception:
        return None  # a broken _repr_*_ costs that one mime type, never the cell
    if isinstance(out, tuple) and len(out) == 2:  # IPython allows (data, metadata)
        out = out[0]
    return out


def _text(value):
    return value if isinstance(value, str) else None


def _b64(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):  # IPython accepts already-encoded data
        return value
    return None


_PLAIN = (str, int, float, bool, type(None))


def _is_plain(value, depth=0):
    if depth > 100:
        return False
    t = type(value)
    if t in _PLAIN:
        return True
    if t is list:
        return all(_is_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _plain_json(value):
    """``value`` when it is JSON data as is (exact dict/list/str/number/bool, finite), else None."""
    if not _is_plain(value):
        return None
    try:
        text = _dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None
    return value if len(text) <= _SIZE_LIMIT else None


def _figure_png(value):
    mod = sys.modules.get("matplotlib.figure")
    if mod is None or not isinstance(value, getattr(mod, "Figure", ())):
        return None
    import io

    buf = io.BytesIO()
    try:
        value.savefig(buf, format="png", bbox_inches="tight")
    except Exception:
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


def mime_bundle(value):
    """The mime bundle of a value, or None for None. Always ``text/plain`` (repr); plus
    ``image/png`` for a matplotlib Figure or ``_repr_png_``, ``image/jpeg``, ``image/svg+xml``,
    ``text/html``, ``text/markdown``, ``text/latex`` from the IPython ``_repr_*_`` methods (and
    ``_repr_mimebundle_``), ``application/json`` from ``_repr_json_`` or for plain JSON data."""
    if value is None:
        return None
    try:
        plain = repr(value)
    except Exception as e:
        plain = "<%s object at %#x (repr failed: %s: %s)>" % (type(value).__name__, id(value), type(e).__name__, e)
    if len(plain) > _SIZE_LIMIT:
        plain = "%s... [%d more characters]" % (plain[:_SIZE_LIMIT], len(plain) - _SIZE_LIMIT)
    bundle = {"text/plain": plain}

    rich = _call_repr(value, "_repr_mimebundle_")
    if isinstance(rich, dict):
        for mime, data in rich.items():
            if isinstance(mime, str) and mime != "text/plain" and data is not None:
                if isinstance(data, (bytes, bytearray)):
                    data = base64.b64encode(bytes(data)).decode("ascii")
                bundle[mime] = data

    png = _figure_png(value) or _b64(_call_repr(value, "_repr_png_"))
    if png:
        bundle["image/png"] = png
    jpeg = _b64(_call_repr(value, "_repr_jpeg_"))
    if jpeg:
        bundle["image/jpeg"] = jpeg
    for mime, name in (
        ("text/html", "_repr_html_"),
        ("image/svg+xml", "_repr_svg_"),
        ("text/markdown", "_repr_markdown_"),
        ("text/latex", "_repr_latex_"),
    ):
        if mime not in bundle:
            text = _text(_call_repr(value, name))
            if text is not None:
                bundle[mime] = text
    if "application/json" not in bundle:
        data = _call_repr(value, "_repr_json_")
        if data is not None:
            data = _plain_json(data)
        else:
            data = _plain_json(value)
        if data is not None:
            bundle["application/json"] = data
    # Keep the event encodable whatever a _repr_*_ returned.
    for mime in list(bundle):
        try:
            _dumps(bundle[mime], allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            del bundle[mime]
    bundle.setdefault("text/plain", plain)
    return bundle


class _Rich:
    __slots__ = ("_data",)
    _kind = ""

    def __init__(self, data):
        self._data = data

    def __repr__(self):
        return "<%s %d %s>" % (self._kind, len(self._data), "chars" if isinstance(self._data, str) else "bytes")


def _rich(kind, method, check):
    def make(data):
        check(data)
        return cls(data)

    def rep(self):
        return self._data

    cls = type(kind, (_Rich,), {"__slots__": (), "_kind": kind, method: rep})
    make.__name__ = kind
    return make


def _needs_str(name):
    def check(data):
        if not isinstance(data, str):
            raise TypeError("%s() expects a str, got %s" % (name, type(data).__name__))

    return check


def _needs_bytes(name):
    def check(data):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("%s() expects bytes, got %s" % (name, type(data).__name__))

    return check


html = _rich("html", "_repr_html_", _needs_str("html"))
html.__doc__ = "Marks a string as HTML for result(): ``result(html('<b>hi</b>'))``."
markdown = _rich("markdown", "_repr_markdown_", _needs_str("markdown"))
markdown.__doc__ = "Marks a string as Markdown for result()."
svg = _rich("svg", "_repr_svg_", _needs_str("svg"))
svg.__doc__ = "Marks a string as an SVG image for result()."
png = _rich("png", "_repr_png_", _needs_bytes("png"))
png.__doc__ = "Marks bytes as a PNG image for result()."
jpeg = _rich("jpeg", "_repr_jpeg_", _needs_bytes("jpeg"))
jpeg.__doc__ = "Marks bytes as a JPEG image for result()."
