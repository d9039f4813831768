"""A cell's leftover processes, for the Python kernel (python_kernel.py): found in /proc and
SIGKILLed when the cell ends. The scope is everything in the PID namespace but this process and
its ancestors, or only its descendants when SLUICE_KERNEL_SCOPE=descendants (tests) or when PID 1
is not bubblewrap's init. node_kernel.js has the same walk in JavaScript (leftovers.js). No
dependencies beyond the standard library; the scope is chosen when it is imported.
"""

import errno
import os
import signal
import time

KILL_WAIT = 0.2  # seconds to wait for a cell's killed processes to be gone


def read_proc(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def stat_of(pid):
    """(state, ppid) of a process, or None when it is gone."""
    try:
        data = read_proc("/proc/%d/stat" % pid)
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0], int(fields[1])


def children_of(pid):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            out.extend(int(x) for x in read_proc("/proc/%d/task/%s/children" % (pid, tid)).split())
        except (OSError, ValueError):
            pass
    return out


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def descendants():
    if HAVE_CHILDREN_FILES:
        found, stack = [], children_of(MY_PID)
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack.extend(children_of(pid))
        return found
    parents = {}
    for pid in all_pids():
        st = stat_of(pid)
        if st:
            parents.setdefault(st[1], []).append(pid)
    found, stack = [], list(parents.get(MY_PID, ()))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(parents.get(pid, ()))
    return found


def live_strays():
    pids = descendants() if SCOPE == "descendants" else [p for p in all_pids() if p not in PROTECTED]
    out = []
    for pid in pids:
        st = stat_of(pid)
        # A zombie is dead already; its parent (a Popen, say) reaps it and keeps the status.
        if st is not None and st[0] != b"Z":
            out.append(pid)
    return out


class Reserve:
    """One fd kept open so that the kernel can still read /proc when a cell has used up every fd."""

    fd = None

    @classmethod
    def take(cls):
        if cls.fd is None:
            try:
                cls.fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass


def kill_strays():
    try:
        _kill(live_strays())
    except OSError as e:
        if e.errno != errno.EMFILE or Reserve.fd is None:
            return
        os.close(Reserve.fd)
        Reserve.fd = None
        try:
            _kill(live_strays())
        except OSError:
            pass
        finally:
            Reserve.take()


def _kill(targets):
    if not targets:
        return
    deadline = time.monotonic() + KILL_WAIT
    while True:
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.0005)
        targets = live_strays()
        if not targets or time.monotonic() > deadline:
            return


def ancestors(pid):
    out = set()
    while pid > 0 and pid not in out:
        out.add(pid)
        st = stat_of(pid)
        if st is None:
            break
        pid = st[1]
    return out


def choose_scope():
    if os.environ.get("SLUICE_KERNEL_SCOPE") == "descendants":
        return "descendants"
    try:
        init = read_proc("/proc/1/comm").strip()
    except OSError:
        init = b""
    # "Everything but my ancestors" is only safe in a PID namespace of our own.
    return "namespace" if init == b"bwrap" else "descendants"


MY_PID = os.getpid()
PROTECTED = ancestors(MY_PID)
SCOPE = choose_scope()
HAVE_CHILDREN_FILES = os.path.exists("/proc/%d/task/%d/children" % (MY_PID, MY_PID))
