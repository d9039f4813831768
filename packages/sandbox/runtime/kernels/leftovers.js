'use strict';
/**
 * A cell's leftover processes, for the JavaScript kernel (node_kernel.js): found in /proc and
 * SIGKILLed when the cell ends. The scope is everything in the PID namespace but this process
 * and its ancestors, or only its descendants when SLUICE_KERNEL_SCOPE=descendants (tests) or
 * when PID 1 is not bubblewrap's init. python_kernel.py has the same walk in Python
 * (sluice_leftovers.py). CommonJS with no dependencies; the scope is chosen when it loads.
 */
const fs = require('node:fs');

const KILL_WAIT_MS = 200;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms) {
  Atomics.wait(sleeper, 0, 0, ms);
}

const PROC_BUF = Buffer.alloc(64 * 1024);
/** A /proc file's text: open and read into a reused buffer (readFileSync costs more per file). */
function readProc(file) {
  const fd = fs.openSync(file, 'r');
  try {
    let n = 0;
    for (;;) {
      const got = fs.readSync(fd, PROC_BUF, n, PROC_BUF.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === PROC_BUF.length) return PROC_BUF.toString('latin1', 0, n) + fs.readFileSync(fd, 'latin1');
    }
    return PROC_BUF.toString('latin1', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** {state, ppid} of a process, or null when it is gone. */
function statOf(pid) {
  let text;
  try {
    text = readProc(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]) };
}

function childrenOf(pid) {
  const out = [];
  let tids;
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const x of readProc(`/proc/${pid}/task/${tid}/children`).split(' ')) if (x !== '' && x !== '\n') out.push(Number(x));
    } catch {
      // the thread ended
    }
  }
  return out;
}

function allPIDs() {
  return fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).map(Number);
}

function descendants() {
  const found = [];
  if (HAVE_CHILDREN_FILES) {
    const stack = childrenOf(MY_PID);
    while (stack.length > 0) {
      const pid = stack.pop();
      found.push(pid);
      stack.push(...childrenOf(pid));
    }
    return found;
  }
  const byParent = new Map();
  for (const pid of allPIDs()) {
    const st = statOf(pid);
    if (st === null) continue;
    if (!byParent.has(st.ppid)) byParent.set(st.ppid, []);
    byParent.get(st.ppid).push(pid);
  }
  const stack = [...(byParent.get(MY_PID) || [])];
  while (stack.length > 0) {
    const pid = stack.pop();
    found.push(pid);
    stack.push(...(byParent.get(pid) || []));
  }
  return found;
}

/** The processes in scope that are still alive (not zombies). */
function liveStrays() {
  const pids = SCOPE === 'descendants' ? descendants() : allPIDs().filter((p) => !PROTECTED.has(p));
  // A zombie is dead already; libuv reaps our own children on its next turn.
  return pids.filter((pid) => {
    const st = statOf(pid);
    return st !== null && st.state !== 'Z';
  });
}

/** One fd kept open so that the kernel can still read /proc when a cell has used up every fd. */
let reserveFD = null;
function takeReserve() {
  if (reserveFD !== null) return;
  try {
    reserveFD = fs.openSync('/dev/null', 'r');
  } catch {
    // none free now; the next cell end tries again
  }
}

/** SIGKILLs the cell's leftover processes and waits (bounded) until they are gone. */
function killStrays() {
  try {
    killListed();
  } catch (err) {
    if (err?.code !== 'EMFILE' || reserveFD === null) throw err;
    fs.closeSync(reserveFD);
    reserveFD = null;
    try {
      killListed();
    } finally {
      takeReserve();
    }
  }
}

function killListed() {
  let targets = liveStrays();
  if (targets.length === 0) return;
  const deadline = Date.now() + KILL_WAIT_MS;
  for (;;) {
    for (const pid of targets) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    sleepMs(0.5);
    targets = liveStrays();
    if (targets.length === 0 || Date.now() > deadline) return;
  }
}

function ancestors(pid) {
  const out = new Set();
  while (pid > 0 && !out.has(pid)) {
    out.add(pid);
    const st = statOf(pid);
    if (st === null) break;
    pid = st.ppid;
  }
  return out;
}

function chooseScope() {
  if (process.env.SLUICE_KERNEL_SCOPE === 'descendants') return 'descendants';
  let init = '';
  try {
    init = readProc('/proc/1/comm').trim();
  } catch {
    // no /proc
  }
  // "Everything but my ancestors" is only safe in a PID namespace of our own.
  return init === 'bwrap' ? 'namespace' : 'descendants';
}

const MY_PID = process.pid;
const PROTECTED = ancestors(MY_PID);
const SCOPE = chooseScope();
const HAVE_CHILDREN_FILES = fs.existsSync(`/proc/${MY_PID}/task/${MY_PID}/children`);

module.exports = { MY_PID, SCOPE, killStrays, liveStrays, takeReserve };
