'use strict';
/**
 * Sluice's JavaScript kernel: one long-lived Node process per session, run as the sandboxed
 * program. The protocol is python_kernel.py's:
 *
 *   the control socket (fd 4; its number is taken out of the environment at start), JSON lines:
 *     server → kernel:
 *       {"type":"execute","nonce":"<hex>","code":"…","stdin":"…"?,"stdin_eof":bool?,"env":{…}?}
 *       {"type":"stdin","data":"…"}   {"type":"stdin_eof"}
 *     kernel → server, one write each:
 *       {"type":"sluice.kernel_ready","language":"javascript","version":"20.x.y","pid":N} once;
 *       {"type":"sluice.background","stream":…,"text":…}: what a callback of an ended cell
 *        printed (found by the cell's async context), which belongs to no running cell;
 *       {"type":"sluice.cell_done","nonce":…,"status":…,"exit_code":N,"exiting":true?,
 *        "broken":…?} only when a cell closed or replaced fd 3 (its fence could not go there).
 *   fd 3 (SLUICE_EVENTS_FD) carries only events (progress, result), each a sync line. A cell
 *   ends with its fence there, which carries its outcome:
 *       {"type":"sync","sync":true,"fence":"<nonce>","done":{"status":"ok"|"error"|"interrupted",
 *        "exit_code":N,"exiting":true?,"broken":"stdout"|"stderr"?}}
 *   (exiting: process.exit() in the cell, or a cell that closed or redirected fd 1/2, ends the
 *   kernel too). The cell's trailing result and its fence go in one write, and the kernel reads
 *   their answers when the next cell starts: a warm cell costs the server one wake-up.
 *   SIGINT interrupts the running cell (vm breakOnSigint, or abandons the awaited promise) and
 *   is ignored between cells.
 *
 * Cells run in the main context (vm.runInThisContext): a separate vm context would give cells
 * their own Array, Object, Promise…, and `instanceof` would fail on every value that Node's
 * modules hand back. The completion value is shown (a Promise is awaited first, as in the Node
 * REPL). A trailing `;` does not hide it: in JS `x;` and `x` are the same statement and most
 * code ends every statement with `;`. Code that does not parse as a script because of
 * top-level `await` or `import` declarations runs as an async function, rewritten so that its
 * top-level declarations become globals (let/const turn into plain assignments there); the
 * rewriter is tla-rewrite.js, beside this file.
 * process.exit() in a cell ends the cell (its fence carries the code) and then the kernel.
 * A cell's leftover processes are SIGKILLed when it ends; leftovers.js, beside this file, finds
 * them in /proc (python_kernel.py has the same walk in sluice_leftovers.py).
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');
const vm = require('node:vm');
const Module = require('node:module');
const { Readable } = require('node:stream');
const { AsyncLocalStorage } = require('node:async_hooks');

const EVENTS_FD = Number(process.env.SLUICE_EVENTS_FD || 3);
const CONTROL_FD = Number(process.env.SLUICE_CONTROL_FD || 4);
const KERNEL_FILE = __filename;
const NONCE = /^[0-9A-Fa-f]{1,128}$/;
// Cells share this realm and may reassign globals; the kernel keeps its own references.
const { stringify, parse: parseJSON } = JSON;
const { isPromise } = util.types;
const SyntaxErrorCtor = SyntaxError;

if (process.env.SLUICE_EVENTS_FD === undefined) process.env.SLUICE_EVENTS_FD = String(EVENTS_FD);
const sluice = require(path.join(__dirname, '..', 'node', 'sluice', 'index.js'));
// The top-level await rewriter and the walk for a cell's leftover processes live beside this file.
const TLA_FILE = path.join(__dirname, 'tla-rewrite.js');
const LEFTOVERS_FILE = path.join(__dirname, 'leftovers.js');
const { asyncWrap, tokenize } = require(TLA_FILE);
const { MY_PID, killStrays, takeReserve } = require(LEFTOVERS_FILE);
// Frames in these files are the kernel's, never shown in a cell's error.
const KERNEL_FILES = [KERNEL_FILE, TLA_FILE, LEFTOVERS_FILE];
const isKernelFrame = (line) => KERNEL_FILES.some((file) => line.includes(file));

// --- output ------------------------------------------------------------------------------

const { blockStd, writeAllSync, send, settle } = sluice._io;
// Taken before any cell runs: the fd of the kernel's own channel, and the identity of stdio
// and of the events socket (a cell that closes or replaces fd 3 must not swallow a cell's end).
delete process.env.SLUICE_CONTROL_FD;
const STDIO = new Map([1, 2].map((fd) => [fd, fs.fstatSync(fd)]));
const EVENTS_STAT = fs.fstatSync(EVENTS_FD);
const { fstatSync } = fs;

/** A message to the server on the control socket. */
function tell(message) {
  writeAllSync(CONTROL_FD, Buffer.from(`${stringify(message)}\n`));
}

/** The cell whose async context runs now (undefined: the kernel's own, or between cells). */
const cellContext = new AsyncLocalStorage();

/** stdout/stderr writes of a callback whose cell has ended go to the server marked as such. */
function markBackground(stream, name) {
  const write = stream.write;
  stream.write = function (chunk, encoding, callback) {
    const cell = cellContext.getStore();
    if (cell === undefined || !cell.ended) return write.apply(this, arguments);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
    try {
      if (text !== '') tell({ type: 'sluice.background', stream: name, text });
    } catch {
      // the server is gone
    }
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
}

/** True while `fd` is still the file it was (`was`, its fstat) when the kernel started. */
function sameFile(fd, was) {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return false;
  }
  return st.ino === was.ino && st.dev === was.dev;
}

/** The stream whose fd a cell closed or pointed elsewhere, or null. */
function brokenStdio() {
  for (const [fd, name] of [[1, 'stdout'], [2, 'stderr']]) if (!sameFile(fd, STDIO.get(fd))) return name;
  return null;
}

/** Resolves once everything written to process.stdout/stderr has reached the fds. */
function flushStd() {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0 && !s.destroyed);
  if (pending.length === 0) return null;
  return Promise.all(pending.map((s) => new Promise((resolve) => s.write('', resolve))));
}

// --- errors ------------------------------------------------------------------------------

function cleanStack(stack) {
  const lines = stack.split('\n');
  // Everything from vm's or the kernel's first frame down is the kernel's, not the user's.
  const cut = lines.findIndex((l) => /^\s+at /.test(l) && (isKernelFrame(l) || /\bnode:vm:/.test(l)));
  return (cut >= 0 ? lines.slice(0, cut) : lines).filter((l) => !isKernelFrame(l)).join('\n');
}

function formatError(err) {
  try {
    if (err !== null && typeof err === 'object' && typeof err.stack === 'string') {
      // Like Node's report of an uncaught error: the stack, then the error's own fields.
      let text = cleanStack(err.stack);
      const extra = Object.keys(err).filter((k) => k !== 'stack' && k !== 'message');
      if (extra.length > 0) text += ` ${util.inspect(Object.fromEntries(extra.map((k) => [k, err[k]])))}`;
      return text;
    }
    return `Uncaught ${util.inspect(err)}`;
  } catch {
    return 'Uncaught exception (it could not be printed)';
  }
}

function printError(err) {
  try {
    writeAllSync(2, Buffer.from(`${formatError(err)}\n`));
  } catch {
    // stderr is gone
  }
}

// --- a cell's stdin ----------------------------------------------------------------------

/** stdin of one cell: fed by stdin messages, read by input() and by process.stdin. */
/** Characters of stdin a cell may have waiting unread in the kernel (as the server's 1 MiB). */
const STDIN_HOLD = 1 << 20;
/**
 * Past STDIN_HOLD the kernel stops reading its control pipe: the pipe fills and the server
 * answers RATE_LIMITED, as for a process's stdin. Set once the control socket exists.
 */
const controlFlow = { pause() {}, resume() {} };

class CellInput {
  constructor(data, eof) {
    this.buf = data;
    this.eof = eof;
    this.closed = false;
    this.waiters = [];
    this.stream = null;
    this.wanting = false;
    this.streamEnded = false;
  }

  feed(data) {
    if (this.eof) return;
    this.buf += data;
    this.pump();
    if (this.buf.length > STDIN_HOLD) controlFlow.pause();
  }

  end() {
    this.eof = true;
    this.pump();
  }

  /** The cell is over: readers get end of input, later messages are dropped. */
  close() {
    this.closed = true;
    this.eof = true;
    this.buf = '';
    this.pump();
  }

  line() {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  readable() {
    if (this.stream === null) {
      const stream = new Readable({
        read: () => {
          this.wanting = true;
          this.pump();
        },
      });
      // Code written for the real stdin (a net.Socket) calls these.
      stream.ref = () => stream;
      stream.unref = () => stream;
      stream.isTTY = false;
      this.stream = stream;
    }
    return this.stream;
  }

  pump() {
    this.deliver();
    // Reading resumes once the cell has taken its input down (or ended).
    if (this.closed || this.buf.length <= STDIN_HOLD) controlFlow.resume();
  }

  /** Hands buffered input to waiting line readers and to the stream, as far as they want it. */
  deliver() {
    while (this.waiters.length > 0) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiters.shift()(line.endsWith('\r') ? line.slice(0, -1) : line);
      } else if (this.eof) {
        const rest = this.buf;
        this.buf = '';
        this.waiters.shift()(rest === '' ? null : rest);
      } else {
        break;
      }
    }
    if (this.stream === null || this.streamEnded) return;
    if (this.wanting && this.buf !== '') {
      const chunk = this.buf;
      this.buf = '';
      this.wanting = this.stream.push(Buffer.from(chunk));
    }
    if (this.eof && this.buf === '') {
      this.streamEnded = true;
      this.stream.push(null);
    }
  }
}

// --- running cells -----------------------------------------------------------------------

const INTERRUPTED = Symbol('interrupted');
const FAILED = Symbol('failed');
const IMPORT_OPTION = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER !== undefined
  ? vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
  : (specifier) => import(specifier);

const state = {
  count: 0,
  cell: null, // {nonce, failure} while a cell runs
  abortWait: null, // rejects the promise the running cell is waiting on
  input: new CellInput('', true),
  queue: [],
  busy: false,
};
state.input.close();

function compileCell(code, filename) {
  const options = { filename, importModuleDynamically: IMPORT_OPTION };
  try {
    return new vm.Script(code, options);
  } catch (err) {
    if (!(err instanceof SyntaxErrorCtor) || !/\b(?:await|import)\b/.test(code)) throw err;
    let candidates = [];
    try {
      candidates = [asyncWrap(code, true), asyncWrap(code, false)];
    } catch {
      // the rewriter gave up; the plain wrapper below may still do
    }
    candidates.push(`(async () => {${code}\n})()`);
    for (const source of candidates) {
      if (source === null) continue;
      try {
        return new vm.Script(source, options);
      } catch {
        // next candidate
      }
    }
    throw err;
  }
}

function waitFor(promise) {
  return new Promise((resolve, reject) => {
    state.abortWait = reject;
    promise.then(resolve, reject);
  }).finally(() => {
    state.abortWait = null;
  });
}

/**
 * Resolves once the event loop holds no more than `baseline` of each kind of ref'd resource
 * (timers, sockets, child processes, fs requests): what the cell started has finished, as a
 * script's process would have before exiting. An unref'd timer polls, so it is not counted.
 */
function settled(baseline) {
  const counts = (list) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map());
  const base = counts(baseline);
  const busy = () => [...counts(process.getActiveResourcesInfo())].some(([k, n]) => n > (base.get(k) ?? 0));
  return new Promise((resolve) => {
    const check = () => {
      if (!busy()) return resolve();
      setTimeout(check, 2).unref();
    };
    check();
  });
}


async function runCell(msg) {
  const cell = { nonce: msg.nonce, failure: null, ended: false };
  msg.nonce = undefined;
  // Every callback the cell schedules carries it, so its output after the cell is known.
  return cellContext.run(cell, () => runCellIn(cell, msg));
}

async function runCellIn(cell, msg) {
  // The answers to the previous cell's end (sent without waiting): here long since.
  settle();
  state.count += 1;
  state.cell = cell;
  state.input = new CellInput(typeof msg.stdin === 'string' ? msg.stdin : '', msg.stdin_eof === true);
  setCellEnv(msg.env);
  const baseline = process.getActiveResourcesInfo();
  let status = 'ok';
  let exitCode = 0;
  let value;
  try {
    if (typeof msg.code !== 'string') throw new TypeError('the execute message has no code string');
    const script = compileCell(msg.code, `<cell ${state.count}>`);
    value = script.runInThisContext({ breakOnSigint: true });
    if (isPromise(value)) value = await waitFor(value);
    // Lets this cell's unhandled rejections and timer errors surface before it ends.
    await waitFor(new Promise((resolve) => setImmediate(resolve)));
    // Timers, sockets and child processes the cell started run to their end, as in a script.
    await waitFor(settled(baseline));
    await waitFor(new Promise((resolve) => setImmediate(resolve)));
  } catch (err) {
    value = undefined;
    if (err === INTERRUPTED || (err && err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED')) {
      status = 'interrupted';
      exitCode = 130;
      // Like Python's KeyboardInterrupt: one line, no stack (it would point into the kernel).
      printError(err === INTERRUPTED ? 'Interrupted (SIGINT) while awaiting the cell\'s promise' : 'Interrupted (SIGINT)');
    } else {
      status = 'error';
      exitCode = 1;
      if (err !== FAILED) printError(err);
    }
  }
  if (cell.ended) return; // process.exit() inside the cell finished it
  if (cell.failure !== null && status === 'ok') {
    status = 'error';
    exitCode = 1;
  }
  const flushed = flushStd();
  if (flushed !== null) await flushed;
  finishCell(cell, status, exitCode, false, value);
}

/** The run's own variables, for this cell only (children inherit process.env). */
function setCellEnv(env) {
  state.savedEnv = new Map();
  if (env === null || typeof env !== 'object') return;
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') continue;
    if (!state.savedEnv.has(k)) state.savedEnv.set(k, Object.hasOwn(process.env, k) ? process.env[k] : undefined);
    process.env[k] = v;
  }
}

function restoreCellEnv() {
  for (const [k, v] of state.savedEnv ?? []) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  state.savedEnv = new Map();
}

/**
 * Ends the cell: its leftover processes killed first, then its trailing value's result and its
 * end (a fence carrying the cell's nonce and outcome) go to the server in one write, without
 * waiting for the answers (read when the next cell starts). Nothing of the cell can print after
 * them: its timers, sockets and children have settled, stdout is flushed, and whatever a
 * callback of the cell prints from now on is marked background output. The server ends the cell
 * when it places the fence, so everything the cell wrote before it is in.
 */
function finishCell(cell, status, exitCode, exiting = false, value = undefined) {
  restoreCellEnv();
  state.input.close();
  try {
    killStrays();
  } catch (err) {
    printError(err);
  }
  const events = [];
  if (value !== undefined) {
    try {
      // The value's own code (a getter, toJSON) may print: still the cell's, before its result.
      const bundle = sluice.mimeBundle(value);
      if (bundle !== null) events.push({ type: 'result', data: bundle });
    } catch (err) {
      printError(err);
    }
  }
  cell.ended = true;
  state.cell = null;
  const broken = brokenStdio();
  const done = { status, exit_code: exitCode, ...(exiting || broken ? { exiting: true } : {}), ...(broken ? { broken } : {}) };
  events.push({ type: 'sync', fence: cell.nonce, done });
  // A cell that closed or replaced fd 3 leaves the control socket to end it.
  if (!sameFile(EVENTS_FD, EVENTS_STAT) || !send(events)) tell({ type: 'sluice.cell_done', nonce: cell.nonce, ...done });
  if (broken && !exiting) process.exit(0);
}

function nextCell() {
  if (state.busy) return;
  const msg = state.queue.shift();
  if (msg === undefined) return;
  state.busy = true;
  runCell(msg).catch(printError).finally(() => {
    state.busy = false;
    nextCell();
  });
}

function onControl(msg) {
  const kind = msg !== null && typeof msg === 'object' ? msg.type : undefined;
  if (kind === 'execute') {
    if (typeof msg.nonce !== 'string' || !NONCE.test(msg.nonce)) return;
    state.queue.push(msg);
    nextCell();
  } else if (kind === 'stdin') {
    if (state.cell !== null && typeof msg.data === 'string') state.input.feed(msg.data);
  } else if (kind === 'stdin_eof') {
    if (state.cell !== null) state.input.end();
  }
}

function onFailure(err) {
  printError(err);
  // In process mode this would end the program; in a cell it fails the cell.
  if (state.cell !== null) {
    if (state.cell.failure === null) state.cell.failure = err;
    if (state.abortWait !== null) state.abortWait(FAILED);
  }
}

function defineGlobals() {
  const cwd = process.cwd();
  const cellFile = path.join(cwd, '[cell]');
  const cellRequire = Module.createRequire(cellFile);
  const cellModule = { id: '.', filename: cellFile, loaded: true, exports: {}, require: cellRequire, paths: cellRequire.resolve.paths('x') || [] };
  const values = {
    require: cellRequire,
    module: cellModule,
    exports: cellModule.exports,
    __filename: cellFile,
    __dirname: cwd,
    progress: sluice.progress,
    result: sluice.result,
    display: sluice.result,
    input: function input(prompt) {
      if (prompt !== undefined) process.stdout.write(String(prompt));
      return state.input.line();
    },
  };
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
  // As in the Node REPL: builtin modules are globals, loaded on first use.
  for (const name of Module.builtinModules) {
    if (name.startsWith('_') || name.includes('/') || name in globalThis) continue;
    const set = (value) => Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
    Object.defineProperty(globalThis, name, {
      configurable: true,
      enumerable: false,
      get() {
        const value = cellRequire(name);
        set(value);
        return value;
      },
      set,
    });
  }
  Object.defineProperty(process, 'stdin', { configurable: true, enumerable: true, get: () => state.input.readable() });
}

function quietExperimentalLoader() {
  // vm's main-context loader warns once, on the first import(); that warning is ours, not the user's.
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    if (String(warning).includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
    return emitWarning.call(process, warning, ...rest);
  };
  return new vm.Script('import("node:path")', { importModuleDynamically: IMPORT_OPTION }).runInThisContext().finally(() => {
    if (process.emitWarning !== emitWarning) process.emitWarning = emitWarning;
  });
}

async function main() {
  // Pipes are async in Node once full; blocking writes keep output and events in order.
  blockStd();
  markBackground(process.stdout, 'stdout');
  markBackground(process.stderr, 'stderr');
  process.on('SIGINT', () => {
    if (state.abortWait !== null && state.cell !== null) state.abortWait(INTERRUPTED);
  });
  process.on('uncaughtException', onFailure);
  process.on('unhandledRejection', onFailure);
  process.on('exit', (code) => {
    if (state.cell !== null && !state.cell.ended) finishCell(state.cell, code === 0 ? 'ok' : 'error', code, true);
  });
  defineGlobals();
  takeReserve();
  try {
    await quietExperimentalLoader();
  } catch {
    // import() in cells will report its own error
  }

  // Reads here; the kernel's messages go out with synchronous writes on the same fd.
  const control = new net.Socket({ fd: CONTROL_FD, readable: true, writable: false });
  controlFlow.pause = () => control.pause();
  controlFlow.resume = () => control.resume();
  control.setEncoding('utf8');
  let pending = '';
  control.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let msg;
      try {
        msg = parseJSON(line);
      } catch {
        continue; // a malformed message is dropped; the next one may be fine
      }
      onControl(msg);
    }
  });
  control.on('error', () => process.exit(0));
  control.on('end', () => process.exit(0)); // the server is gone

  tell({ type: 'sluice.kernel_ready', language: 'javascript', version: process.versions.node, pid: MY_PID });
}

if (require.main === module) {
  main().catch((err) => {
    printError(err);
    process.exit(1);
  });
} else {
  module.exports = { asyncWrap, tokenize };
}
