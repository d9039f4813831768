"""Sluice's Python kernel: one long-lived interpreter per session, run as the sandboxed program.

Protocol (the server's kernel client, kernel-messages.ts, relies on exactly this):
  the control socket (fd 4 at start; the kernel moves it to a high fd of its own, so that cells
  neither see it at 4 nor find its number in the environment), JSON lines both ways:
    server -> kernel:
      {"type":"execute","nonce":"<hex>","code":"...","stdin":"..."?,"stdin_eof":bool?,"env":{...}?}
      {"type":"stdin","data":"..."}   {"type":"stdin_eof"}
    kernel -> server, one write() each:
      {"type":"sluice.kernel_ready","language":"python","version":"3.11.2","pid":N} once;
      (a cell's end is its fence on fd 3, below: no cell_done here);
      {"type":"sluice.background","stream":"stdout"|"stderr","text":"..."}: what a thread of an
       ended cell printed (it belongs to no running cell).
  fd 3 (SLUICE_EVENTS_FD) carries only events (progress, result), each a sync line (the helper
  waits for the server's one-byte answer). At the end of a cell the kernel flushes its output
  and writes its fence there, which is also its end:
      {"type":"sync","sync":true,"fence":"<nonce>","done":{"status":"ok"|"error"|"interrupted",
       "exit_code":N,"exiting":bool?,"broken":"stdout"|"stderr"?}}
  The server ends the cell when it places that line, so everything of the cell (written before
  it) is in first; the nonce (not given to the cell's code) makes it the kernel's. The
  kernel reads the answers to its own sync lines afterwards, and does not wait for its trailing
  expression's result either when nothing else of the cell can print after it (no thread of
  the cell alive, no process left, no pyplot figures): the result and the fence go out in one
  write, and a warm cell costs the server one wake-up. SIGINT interrupts the running cell and is
  ignored between cells.

A cell waits for the non-daemon threads it started, as a script would; threads still running
after it (daemon ones, or any after an interrupt) print as "background" output. A cell that
closes or redirects fd 1 or 2 ends the kernel after it (exiting, broken): later cells could not
print. The kernel keeps its own references to what it needs (os.write, a JSON decoder, fds), so
a cell that patches json or os does not break it.

Cells run like Jupyter's: one persistent __main__ namespace, the value of a trailing expression
is shown unless the code ends with ';', top-level await works, matplotlib figures left open
are sent as PNG results and closed. A cell's processes die with it: everything in the PID
namespace but the kernel and its ancestors, or only its descendants when
SLUICE_KERNEL_SCOPE=descendants (tests, or when PID 1 is not bubblewrap's init); the walk that
finds them is sluice_leftovers.py, beside this file (node_kernel.js has its own, leftovers.js).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # before anything can import matplotlib

import __future__
import ast
import builtins
import fcntl
import io
import json
import linecache
import queue
import random
import re
import signal
import sys
import threading
import types
from _json import encode_basestring_ascii as _json_str

# The walk for a cell's leftover processes is a module beside this file; main() takes this
# directory out of sys.path later (PYTHONSAFEPATH would have left it out already).
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from sluice_leftovers import MY_PID, Reserve, kill_strays, live_strays  # noqa: E402

EVENTS_FD = int(os.environ.get("SLUICE_EVENTS_FD") or 3)
CONTROL_FD = int(os.environ.get("SLUICE_CONTROL_FD") or 4)
# The kernel's own references: a cell may patch json, os or threading without breaking it.
_os_write, _os_read, _os_fstat = os.write, os.read, os.fstat
_decode = json.JSONDecoder().decode
_dumps = json.dumps
_current_thread = threading.current_thread
KERNEL_FILE = os.path.abspath(__file__)
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect (~10 ms)
FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag
NONCE = re.compile(r"[0-9A-Fa-f]{1,128}\Z")


class State:
    in_cell = False  # SIGINT raises KeyboardInterrupt only while this is set
    owed = 0  # answers to the kernel's own sync lines not read yet (see settle())
    unsent = []  # the kernel's sync lines not written yet: they go out together
    holding = False  # the kernel holds Channel.lock until it has read them
    no_strays = False  # the cell's end found no process and no thread of it alive
    before = frozenset()  # the threads alive when the cell began
    saved_env = {}  # the values a cell's env replaced, put back when it ends
    execute_pending = False  # an execute was read and its cell has not started yet
    early_interrupt = False  # a SIGINT hit that pending cell before it started
    count = 0
    flags = 0  # __future__ flags that earlier cells turned on
    loop = None


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = _os_write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[n:]


def encode(value):
    """JSON for the kernel's own messages (str, int, bool, None, dict), with no json module."""
    if isinstance(value, str):
        return _json_str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, dict):
        return "{" + ",".join(_json_str(str(k)) + ":" + encode(v) for k, v in value.items()) + "}"
    return _json_str(str(value))


class Channel:
    ctl = CONTROL_FD  # moved out of the cells' way in main()
    events = EVENTS_FD  # the kernel's own copy of the events socket
    lock = None  # the sluice helper's lock: one sync line and its answer at a time
    ctl_lock = threading.Lock()
    stdio = {}  # fd -> (st_dev, st_ino) of the server's sockets


def tell(message):
    """A message to the server on the control socket."""
    with Channel.ctl_lock:
        write_all(Channel.ctl, (encode(message) + "\n").encode("ascii"))


def send_sync(line, wait=True):
    """A sync line on the events socket; returns once the server placed it. When not `wait` it
    is only queued (send_unsent() writes the queue in one write: a result and the fence behind
    it wake the server once), and the kernel keeps the helpers' lock (no other thread's sync
    line can come between or take an answer) until settle() has read the answers it is owed."""
    if not State.holding:
        Channel.lock.acquire()
        State.holding = True
    State.unsent.append(line)
    State.owed += 1
    if wait:
        settle()


def send_unsent():
    if State.unsent:
        data = b"".join(State.unsent)
        State.unsent = []
        write_all(Channel.events, data)


def settle():
    """Writes the kernel's queued sync lines, reads the answers to all it wrote, then lets other
    threads' in."""
    if not State.holding:
        return
    try:
        send_unsent()
        while State.owed > 0:
            try:
                got = _os_read(Channel.events, State.owed)
                if not got:
                    break
                State.owed -= len(got)
            except InterruptedError:
                continue
            except OSError:
                break
    finally:
        State.owed = 0
        State.unsent = []
        State.holding = False
        Channel.lock.release()


def emit_result(bundle, wait=True):
    line = _dumps({"type": "result", "data": bundle, "sync": True}, separators=(",", ":")).encode("ascii") + b"\n"
    send_sync(line, wait)


def flush_std():
    for stream in (sys.stdout, sys.stderr, STDOUT, STDERR):
        try:
            stream.flush()
        except Exception:
            pass


# Characters of stdin a cell may have waiting unread in the kernel (as the server's 1 MiB).
STDIN_HOLD = 1 << 20


class CellStdin(io.TextIOBase):
    """sys.stdin for cells: fed by the control thread's stdin messages; reads block until
    data or end of input arrives (and are interruptible by SIGINT)."""

    encoding = "utf-8"
    errors = "strict"
    name = "<stdin>"

    def __init__(self):
        super().__init__()
        self._cond = threading.Condition()
        self._buf = ""
        self._eof = True
        self._active = False

    def begin(self, data, eof):
        with self._cond:
            self._buf, self._eof, self._active = data, eof, True
            self._cond.notify_all()

    def end(self):
        with self._cond:
            self._buf, self._eof, self._active = "", True, False
            self._cond.notify_all()

    def feed(self, data):
        with self._cond:
            if self._active and not self._eof:
                self._buf += data
                self._cond.notify_all()
            # Input the cell has not read stays bounded: the control thread stops reading, the
            # pipe fills, and the server answers RATE_LIMITED, as for a process's stdin.
            while self._active and len(self._buf) > STDIN_HOLD:
                self._cond.wait()

    def close_input(self):
        with self._cond:
            if self._active:
                self._eof = True
                self._cond.notify_all()

    def readable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("the kernel's stdin is fed by messages and has no fd")

    @property
    def buffer(self):
        return _BinaryStdin(self)

    def read(self, size=-1):
        size = -1 if size is None else size
        return self._take(lambda buf: len(buf) if size < 0 else size, size)

    def readline(self, size=-1):
        size = -1 if size is None else size
        return self._take(lambda buf: buf.find("\n") + 1 or len(buf), size, stop_at_newline=True)

    def _take(self, want, size, stop_at_newline=False):
        """Moves input out as it arrives (so the feeder is never left waiting on a full buffer)
        until `size` characters, a newline when asked, or the end of input."""
        parts, got = [], 0
        with self._cond:
            while True:
                n = want(self._buf)
                if size >= 0:
                    n = min(n, size - got)
                if n > 0:
                    part, self._buf = self._buf[:n], self._buf[n:]
                    parts.append(part)
                    got += n
                    self._cond.notify_all()
                    if stop_at_newline and part.endswith("\n"):
                        break
                if (size >= 0 and got >= size) or (self._eof and not self._buf):
                    break
                self._cond.wait()
        return "".join(parts)


class _BinaryStdin(io.BufferedIOBase):
    def __init__(self, text):
        super().__init__()
        self._text = text

    def readable(self):
        return True

    def read(self, size=-1):
        return self._text.read(size).encode("utf-8", "surrogateescape")

    read1 = read

    def readline(self, size=-1):
        return self._text.readline(size).encode("utf-8", "surrogateescape")


class CellStream(io.TextIOWrapper):
    """Like python -u: a write-through text layer over the raw fd, so print() streams. A thread
    that outlived its cell writes "background" output instead: it belongs to no running cell."""

    def write(self, s):
        if getattr(_current_thread(), "_sluice_ended", False) and isinstance(s, str):
            if s:
                tell({"type": "sluice.background", "stream": self.sluice_stream, "text": s})
            return len(s)
        return super().write(s)


def unbuffered(fd, name):
    stream = CellStream(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    stream.sluice_stream = name
    return stream


STDOUT = unbuffered(1, "stdout")
STDERR = unbuffered(2, "stderr")
STDIN = CellStdin()
QUEUE = queue.SimpleQueue()
NONCES = queue.SimpleQueue()  # the cells' nonces, kept out of the main loop's frames


def on_sigint(signum, frame):
    if State.in_cell:
        raise KeyboardInterrupt
    if State.execute_pending:
        State.early_interrupt = True


def control_reader():
    pending = b""
    while True:
        try:
            chunk = _os_read(Channel.ctl, 1 << 16)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            QUEUE.put(None)
            return
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            try:
                handle_control(_decode(line.decode("utf-8")))
            except Exception:
                pass  # a malformed message is dropped; the next one may be fine
        # This frame is readable from the cell's threads (sys._current_frames): hold no nonce.
        chunk = line = lines = None


def handle_control(msg):
    kind = msg.get("type") if isinstance(msg, dict) else None
    if kind == "execute":
        nonce = msg.pop("nonce", None)
        if not isinstance(nonce, str) or not NONCE.match(nonce):
            return
        NONCES.put(nonce)
        data = msg.get("stdin")
        # Stdin goes live now, not when the cell starts: messages right behind the execute are kept.
        STDIN.begin(data if isinstance(data, str) else "", msg.get("stdin_eof") is True)
        State.early_interrupt = False
        State.execute_pending = True
        QUEUE.put(msg)
    elif kind == "stdin":
        data = msg.get("data")
        if isinstance(data, str):
            STDIN.feed(data)
    elif kind == "stdin_eof":
        STDIN.close_input()


# --- running a cell ----------------------------------------------------------------------

G = {}  # the user's namespace, set up in main()


def ends_with_semicolon(lines, node):
    line = lines[node.end_lineno - 1]
    # end_col_offset counts UTF-8 bytes.
    rest = line.encode("utf-8", "surrogatepass")[node.end_col_offset :].decode("utf-8", "replace")
    rest = "\n".join([rest] + lines[node.end_lineno :])
    # Only closing parens, ';', comments and blanks can follow the last expression.
    return re.sub(r"#[^\n]*", "", rest).rstrip().endswith(";")


def compile_cell(code, filename):
    """(body, last): code objects for the statements and the trailing expression (or None)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | State.flags
    tree = compile(code, filename, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not ends_with_semicolon(code.split("\n"), tree.body[-1]):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec", flags, dont_inherit=True) if tree.body else None
    if body is not None:
        State.flags |= body.co_flags & FUTURE_FLAGS
    if last is not None:
        last = compile(last, filename, "eval", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | State.flags, dont_inherit=True)
    return body, last


def run_code(co):
    value = eval(co, G)
    if co.co_flags & CO_COROUTINE:
        value = run_coroutine(value)
    return value


def run_coroutine(coro):
    import asyncio

    if State.loop is None or State.loop.is_closed():
        State.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(State.loop)
    loop = State.loop
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        if not task.done():
            # Give the cell's coroutine its CancelledError (finally blocks, closes) within a bound.
            task.cancel()
            try:
                loop.run_until_complete(asyncio.wait([task], timeout=1))
            except BaseException:
                pass
        raise


def trim_traceback(tb):
    """The traceback from the cell's first frame on: the kernel's frames are not the user's."""
    t = tb
    while t is not None and not t.tb_frame.f_code.co_filename.startswith("<cell "):
        t = t.tb_next
    if t is None:
        t = tb
        while t is not None and t.tb_frame.f_code.co_filename == KERNEL_FILE:
            t = t.tb_next
    # The SIGINT handler's frame at the end (an interrupt) is not the user's either.
    last_user = None
    frame = t
    while frame is not None:
        if frame.tb_frame.f_code.co_filename != KERNEL_FILE:
            last_user = frame
        frame = frame.tb_next
    if last_user is not None:
        last_user.tb_next = None
    return t


def print_exception(exc):
    settle()  # a result not waited for is placed before this traceback
    tb = trim_traceback(exc.__traceback__)
    exc.__traceback__ = tb  # the default excepthook prints this, not its tb argument
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    flush_std()
    try:
        if sys.excepthook is sys.__excepthook__:
            # The C hook reads source lines from disk; the traceback module finds cells in linecache.
            import traceback

            traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
        else:
            sys.excepthook(type(exc), exc, tb)
    except Exception:
        import traceback

        traceback.print_exception(type(exc), exc, tb, file=STDERR)
    flush_std()


def exit_status(exc):
    """(status, exit_code) for SystemExit, as the interpreter would exit."""
    code = exc.code
    if code is None:
        return "ok", 0
    if isinstance(code, int) and not isinstance(code, bool):
        code &= 0xFF
        return ("ok" if code == 0 else "error"), code
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return "error", 1


def show(value, last=False):
    bundle = sluice.mime_bundle(value)
    if bundle is not None:
        flush_std()
        # The trailing expression's result needs no answer when nothing can print after it.
        emit_result(bundle, wait=not (last and cell_is_quiet()))


def cell_is_quiet():
    """True when nothing of the cell can write any more: no thread it started alive, no process
    left, no pyplot figure to show (the kernel's own next line is its fence)."""
    if "matplotlib.pyplot" in sys.modules:
        return False
    me = _current_thread()
    for t in threading.enumerate():
        if t is not me and t not in State.before and t.is_alive():
            return False
    try:
        if live_strays():
            return False
    except OSError:
        return False
    State.no_strays = True
    return True


def show_figures(skip):
    if "matplotlib.pyplot" not in sys.modules:
        return
    try:
        from matplotlib._pylab_helpers import Gcf

        managers = Gcf.get_all_fig_managers()
    except Exception:
        return
    for manager in managers:
        try:
            figure = manager.canvas.figure
            if figure is not skip:
                show(figure)
        except Exception as e:
            print_exception(e)
        finally:
            Gcf.destroy(manager)


def set_env(env):
    """The run's own variables, for this cell only (children inherit os.environ)."""
    State.saved_env = {}
    if not isinstance(env, dict):
        return
    for k, v in env.items():
        if isinstance(k, str) and isinstance(v, str):
            State.saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v


def restore_env():
    for k, v in State.saved_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    State.saved_env = {}


def run_cell(msg):
    set_env(msg.get("env"))
    State.count += 1
    State.in_cell = True
    State.execute_pending = False
    code = msg.get("code")
    msg = None
    before = set(threading.enumerate())
    State.before = frozenset(before)
    State.no_strays = False
    status, exit_code, value = "ok", 0, None
    try:
        try:
            if State.early_interrupt:
                raise KeyboardInterrupt
            if not isinstance(code, str):
                raise TypeError("the execute message has no code string")
            # compile() reads \r and \r\n as \n anyway; normalising keeps ast positions on our lines.
            code = code.replace("\r\n", "\n").replace("\r", "\n")
            filename = "<cell %d>" % State.count
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            body, last = compile_cell(code, filename)
            if body is not None:
                run_code(body)
            if last is not None:
                value = run_code(last)
                if value is not None:
                    builtins._ = value
                    show(value, last=True)
            join_threads(before)
        finally:
            State.in_cell = False
    except KeyboardInterrupt as e:
        State.in_cell = False
        print_exception(e)
        status, exit_code = "interrupted", 130
    except SystemExit as e:
        State.in_cell = False
        status, exit_code = exit_status(e)
    except BaseException as e:
        State.in_cell = False
        print_exception(e)
        status, exit_code = "error", 1
    finish(status, exit_code, value)


def join_threads(before):
    """Waits for the non-daemon threads the cell started, as a script waits at exit (SIGINT,
    the timeout or a cancel, interrupts the wait)."""
    while True:
        started = [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive() and t is not _current_thread()]
        if not started:
            return
        for t in started:
            t.join()


def end_threads():
    """Threads alive after their cell print as background output from now on."""
    me = _current_thread()
    for t in threading.enumerate():
        if t is not me and t.name != "sluice-control":
            t._sluice_ended = True


def broken_stdio():
    """The stream whose fd the cell closed or pointed elsewhere, or None."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            st = _os_fstat(fd)
        except OSError:
            return name
        if (st.st_dev, st.st_ino) != Channel.stdio.get(fd):
            return name
    return None


def finish(status, exit_code, value):
    if os.getpid() != MY_PID:
        # A process the cell forked (os.fork()) got here at the end of its copy of the cell: it
        # must not act as the kernel (end the cell, read the control fd). It exits like a script.
        flush_std()
        os._exit(exit_code)
    STDIN.end()
    restore_env()
    try:
        show_figures(value)
    except BaseException:
        pass
    sys.stdout, sys.stderr, sys.stdin = STDOUT, STDERR, STDIN  # a cell's reassignments end with it
    flush_std()
    nonce = NONCES.get()
    try:
        # No user code ran since cell_is_quiet() found no process: no walk of /proc again.
        if not State.no_strays:
            kill_strays()
        end_threads()
        broken = broken_stdio()
        done = {"status": status, "exit_code": exit_code}
        if broken:
            done["exiting"] = True
            done["broken"] = broken
        # The fence is the cell's end; its answer is read after it has gone out (settle()).
        fence = {"type": "sync", "sync": True, "fence": nonce, "done": done}
        send_sync((encode(fence) + "\n").encode("ascii"), wait=False)
    finally:
        State.before = frozenset()
        settle()
    if broken:
        os._exit(0)


def main():
    global sluice, G, KERNEL_MODULE
    # Cells get their stdin from messages; children get EOF instead of the idle pipe on fd 0.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # The control socket moves to a high fd of the kernel's own (close-on-exec, not at 4, not
    # in the environment); private copies of the events socket and of stdio's identity too.
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = soft if 0 < soft < 1 << 20 else 1024
    base = max(10, top // 2 + random.randrange(max(1, top // 2 - 8)))
    Channel.ctl = fcntl.fcntl(CONTROL_FD, fcntl.F_DUPFD_CLOEXEC, base)
    os.close(CONTROL_FD)
    os.environ.pop("SLUICE_CONTROL_FD", None)
    Channel.events = fcntl.fcntl(EVENTS_FD, fcntl.F_DUPFD_CLOEXEC, base + 1)
    for fd in (1, 2):
        st = _os_fstat(fd)
        Channel.stdio[fd] = (st.st_dev, st.st_ino)
    Reserve.take()
    os.environ["SLUICE_EVENTS_FD"] = str(EVENTS_FD)
    # Imports resolve from the working directory, as in the REPL, not from this file's folder.
    here = os.path.dirname(KERNEL_FILE)
    sys.path[:] = [""] + [p for p in sys.path if p != here]
    helpers = os.path.join(os.path.dirname(here), "python")
    if helpers not in sys.path:
        sys.path.append(helpers)
    import sluice

    Channel.lock = sluice._lock
    sys.stdout, sys.stderr, sys.stdin = STDOUT, STDERR, STDIN
    sys.argv = [""]
    builtins.progress = sluice.progress
    builtins.result = sluice.result
    builtins.display = sluice.result

    # A real __main__ module around the namespace, so pickle finds classes defined in cells.
    main_module = types.ModuleType("__main__")
    main_module.__builtins__ = builtins
    G = main_module.__dict__
    KERNEL_MODULE = sys.modules["__main__"]
    sys.modules["__main__"] = main_module

    signal.signal(signal.SIGINT, on_sigint)
    threading.Thread(target=control_reader, name="sluice-control", daemon=True).start()
    tell({
        "type": "sluice.kernel_ready",
        "language": "python",
        "version": "%d.%d.%d" % sys.version_info[:3],
        "pid": MY_PID,
    })
    while True:
        msg = QUEUE.get()
        if msg is None:  # the server closed the control pipe
            flush_std()
            os._exit(0)
        run_cell(msg)


sluice = None
KERNEL_MODULE = None

if __name__ == "__main__":
    main()
