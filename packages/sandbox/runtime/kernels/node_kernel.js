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
 *       {"type":"sluice.cell_done","nonce":…,"status":"ok"|"error"|"interrupted","exit_code":N,
 *        "exiting":true?,"broken":"stdout"|"stderr"?} after each cell (exiting: process.exit()
 *        in the cell, or a cell that closed or redirected fd 1/2, ends the kernel too);
 *       {"type":"sluice.background","stream":…,"text":…}: what a callback of an ended cell
 *        printed (found by the cell's async context), which belongs to no running cell.
 *   fd 3 (SLUICE_EVENTS_FD) carries only events (progress, result), each a sync line; before
 *   cell_done the kernel flushes the cell's output and sends a {"type":"sync"} fence there.
 *   SIGINT interrupts the running cell (vm breakOnSigint, or abandons the awaited promise) and
 *   is ignored between cells.
 *
 * Cells run in the main context (vm.runInThisContext): a separate vm context would give cells
 * their own Array, Object, Promise…, and `instanceof` would fail on every value that Node's
 * modules hand back. The completion value is shown (a Promise is awaited first, as in the Node
 * REPL). A trailing `;` does not hide it: in JS `x;` and `x` are the same statement and most
 * code ends every statement with `;`. Code that does not parse as a script because of
 * top-level `await` or `import` declarations runs as an async function, rewritten so that its
 * top-level declarations become globals (let/const turn into plain assignments there).
 * process.exit() in a cell ends the cell (cell_done carries the code) and then the kernel.
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
const KILL_WAIT_MS = 200;
// Cells share this realm and may reassign globals; the kernel keeps its own references.
const { stringify, parse: parseJSON } = JSON;
const { isPromise } = util.types;
const SyntaxErrorCtor = SyntaxError;

if (process.env.SLUICE_EVENTS_FD === undefined) process.env.SLUICE_EVENTS_FD = String(EVENTS_FD);
const sluice = require(path.join(__dirname, '..', 'node', 'sluice', 'index.js'));

// --- output ------------------------------------------------------------------------------

const { blockStd, sleepMs, writeAllSync, emit } = sluice._io;
// Taken before any cell runs: the fd of the kernel's own channel, and stdio's identity.
delete process.env.SLUICE_CONTROL_FD;
const STDIO = new Map([1, 2].map((fd) => [fd, fs.fstatSync(fd)]));
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

/** The stream whose fd a cell closed or pointed elsewhere, or null. */
function brokenStdio() {
  for (const [fd, name] of [[1, 'stdout'], [2, 'stderr']]) {
    let st;
    try {
      st = fstatSync(fd);
    } catch {
      return name;
    }
    const was = STDIO.get(fd);
    if (st.ino !== was.ino || st.dev !== was.dev) return name;
  }
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
  const cut = lines.findIndex((l) => /^\s+at /.test(l) && (l.includes(KERNEL_FILE) || /\bnode:vm:/.test(l)));
  return (cut >= 0 ? lines.slice(0, cut) : lines).filter((l) => !l.includes(KERNEL_FILE)).join('\n');
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

// --- top-level await: a small tokenizer and rewriter -------------------------------------

const PUNCT = /(?:>>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.(?!\d)|\+\+|--|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@])/y;
const IDENT = /#?(?:[\p{ID_Start}$_]|\\u[0-9a-fA-F{])(?:[\p{ID_Continue}$\u200c\u200d]|\\u[0-9a-fA-F{}]+)*/uy;
const NUMBER = /(?:0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);
const EXPECTS_EXPRESSION = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'yield', 'await', 'extends']);
const CONTINUES_LINE = new Set(['(', '[', '.', '?.', ',', '=', '=>', '?', ':', '+', '-', '*', '/', '%', '**', '==', '!=', '===', '!==', '<', '>', '<=', '>=', '&&', '||', '??', '&', '|', '^', '<<', '>>', '>>>', '+=', '-=', '*=', '/=', '%=', '**=', '<<=', '>>=', '>>>=', '&=', '|=', '^=', '&&=', '||=', '??=']);
// After these words a `{` opens an object literal or pattern, not a block.
const BRACE_IS_VALUE_AFTER = new Set([...EXPECTS_EXPRESSION, 'var', 'let', 'const', 'import', 'export']);
const NOT_EXPRESSIONS = new Set(['var', 'let', 'const', 'function', 'class', 'if', 'for', 'while', 'do', 'try', 'switch', 'return', 'throw', 'break', 'continue', 'import', 'export', 'debugger', 'with', 'else', 'catch', 'finally']);

/**
 * Tokens of JS source: {t: 'name'|'num'|'str'|'tpl'|'re'|'punct', v, s, e, nl (a line break
 * before it), d (bracket depth; closers get their opener's), m (an opener's closer index)}.
 * Enough to find top-level statements, not a validator: V8 judges the rewritten code.
 */
function tokenize(src) {
  const toks = [];
  const stack = [];
  const n = src.length;
  let i = src.startsWith('#!') ? src.indexOf('\n') : 0;
  if (i < 0) i = n;
  let nl = false;
  const scanTemplate = (j) => {
    while (j < n) {
      const c = src[j];
      if (c === '\\') j += 2;
      else if (c === '`') return [j + 1, false];
      else if (c === '$' && src[j + 1] === '{') return [j + 2, true];
      else j += 1;
    }
    return [n, false];
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') {
      nl = true;
      i += 1;
      continue;
    }
    if (c === ' ' || c === '\t' || /\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      let end = src.indexOf('*/', i + 2);
      end = end < 0 ? n : end + 2;
      if (/[\n\r\u2028\u2029]/.test(src.slice(i, end))) nl = true;
      i = end;
      continue;
    }
    const s = i;
    const prev = toks[toks.length - 1];
    let t;
    let open = false;
    let closes = false;
    if (c === '"' || c === "'") {
      t = 'str';
      i += 1;
      while (i < n && src[i] !== c && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
      i = Math.min(n, i + 1);
    } else if (c === '`' || (c === '}' && stack.length > 0 && stack[stack.length - 1].tpl)) {
      t = 'tpl';
      if (c === '}') closes = true;
      [i, open] = scanTemplate(i + 1);
    } else if (c >= '0' && c <= '9' || (c === '.' && src[i + 1] >= '0' && src[i + 1] <= '9')) {
      t = 'num';
      NUMBER.lastIndex = i;
      i = NUMBER.test(src) ? NUMBER.lastIndex : i + 1;
    } else if (c === '/' && regexAllowed(prev)) {
      t = 're';
      i += 1;
      let inClass = false;
      while (i < n && src[i] !== '\n') {
        const ch = src[i];
        if (ch === '\\') i += 2;
        else {
          i += 1;
          if (ch === '[') inClass = true;
          else if (ch === ']') inClass = false;
          else if (ch === '/' && !inClass) break;
        }
      }
      while (i < n && /[a-z]/.test(src[i])) i += 1;
    } else {
      IDENT.lastIndex = i;
      if (IDENT.test(src)) {
        t = 'name';
        i = IDENT.lastIndex;
      } else {
        t = 'punct';
        PUNCT.lastIndex = i;
        i = PUNCT.test(src) ? PUNCT.lastIndex : i + 1;
      }
    }
    const v = src.slice(s, i);
    const tok = { t, v, s, e: i, nl, d: stack.length, m: -1 };
    nl = false;
    if (closes || (t === 'punct' && (v === '}' || v === ')' || v === ']') && stack.length > 0)) {
      const opener = stack.pop();
      tok.d = stack.length;
      toks[opener.k].m = toks.length;
    }
    if (open || (t === 'punct' && (v === '{' || v === '(' || v === '['))) stack.push({ k: toks.length, tpl: open });
    toks.push(tok);
  }
  return toks;
}

function regexAllowed(prev) {
  if (prev === undefined) return true;
  if (prev.t === 'num' || prev.t === 'str' || prev.t === 're') return false;
  if (prev.t === 'tpl') return prev.v.endsWith('${');
  if (prev.t === 'name') return REGEX_AFTER_WORD.has(prev.v);
  return !(prev.v === ')' || prev.v === ']' || prev.v === '}' || prev.v === '++' || prev.v === '--');
}

/** Does a line break between prev and tok end a statement (automatic semicolon insertion)? */
function lineBreakEnds(prev, tok) {
  if (prev.t === 'punct' && !(prev.v === ')' || prev.v === ']' || prev.v === '}' || prev.v === '++' || prev.v === '--')) return false;
  if (prev.t === 'name' && EXPECTS_EXPRESSION.has(prev.v) && prev.v !== 'return') return false;
  if (prev.t === 'tpl' && prev.v.endsWith('${')) return false;
  if (tok.t === 'punct') return !CONTINUES_LINE.has(tok.v);
  if (tok.t === 'tpl' && tok.v.startsWith('`')) return false;
  if (tok.t === 'name' && (tok.v === 'instanceof' || tok.v === 'in' || tok.v === 'of')) return false;
  return true;
}

/** Indices of the tokens that start a top-level statement. */
function statementStarts(toks) {
  const starts = [];
  const block = new Set(); // indices of top-level `{` that open a block, not an object literal
  for (let k = 0; k < toks.length; k += 1) {
    const tok = toks[k];
    if (tok.d !== 0) continue;
    const prev = toks[k - 1];
    let start = false;
    if (prev === undefined || (prev.t === 'punct' && prev.v === ';')) start = true;
    else if (prev.t === 'punct' && prev.v === '}' && prev.o !== undefined && block.has(prev.o)) start = true;
    else if (tok.nl && lineBreakEnds(prev, tok)) start = true;
    if (start) starts.push(k);
    if (tok.t === 'punct' && tok.v === '{') {
      const isBlock = start || prev === undefined || (prev.t === 'punct' && (prev.v === ')' || prev.v === '=>' || prev.v === '}' || prev.v === ';')) ||
        (prev.t === 'name' && !BRACE_IS_VALUE_AFTER.has(prev.v));
      if (isBlock) block.add(k);
      if (tok.m >= 0) toks[tok.m].o = k;
    }
  }
  return starts;
}

function isExpressionStatement(toks, k) {
  const tok = toks[k];
  if (tok.t === 'punct') return tok.v !== '{' && tok.v !== ';';
  if (tok.t !== 'name') return true;
  if (NOT_EXPRESSIONS.has(tok.v)) return false;
  const next = toks[k + 1];
  if (next !== undefined && next.t === 'punct' && next.v === ':') return false; // a label
  return !(tok.v === 'async' && next !== undefined && next.v === 'function' && !next.nl);
}

/** `import … from 'm'` as an assignment from `await import('m')`, or null when not understood. */
function rewriteImport(src, toks, k, last) {
  let j = k + 1;
  let def = null;
  let ns = null;
  const specs = [];
  const at = (x) => (x <= last ? toks[x] : undefined);
  let tok = at(j);
  if (tok === undefined) return null;
  if (tok.t !== 'str') {
    if (tok.t === 'name' && tok.v !== 'from') {
      def = tok.v;
      j += 1;
      if (at(j) && at(j).v === ',') j += 1;
    }
    tok = at(j);
    if (tok && tok.v === '*') {
      if (!at(j + 1) || at(j + 1).v !== 'as' || !at(j + 2) || at(j + 2).t !== 'name') return null;
      ns = at(j + 2).v;
      j += 3;
    } else if (tok && tok.v === '{') {
      j += 1;
      while (at(j) && at(j).v !== '}') {
        const name = at(j);
        if (name.t !== 'name' && name.t !== 'str') return null;
        let local = name.v;
        j += 1;
        if (at(j) && at(j).v === 'as') {
          if (!at(j + 1) || at(j + 1).t !== 'name') return null;
          local = at(j + 1).v;
          j += 2;
        } else if (name.t === 'str') {
          return null;
        }
        specs.push(local === name.v ? local : `${name.v}: ${local}`);
        if (at(j) && at(j).v === ',') j += 1;
      }
      if (!at(j)) return null;
      j += 1;
    }
    if (!at(j) || at(j).v !== 'from') return null;
    j += 1;
  }
  const spec = at(j);
  if (!spec || spec.t !== 'str') return null;
  j += 1;
  let options = '';
  const attrs = at(j);
  if (attrs && (attrs.v === 'with' || attrs.v === 'assert') && at(j + 1) && at(j + 1).v === '{' && at(j + 1).m >= 0) {
    const close = toks[at(j + 1).m];
    options = `, { with: ${src.slice(at(j + 1).s, close.e)} }`;
    j = at(j + 1).m + 1;
  }
  if (j <= last) return null;
  const load = `await import(${spec.v}${options})`;
  if (ns !== null) return `void (${ns} = ${load}${def !== null ? `, ${def} = ${ns}.default` : ''})`;
  if (def === null && specs.length === 0 && src.slice(toks[k + 1].s, toks[k + 1].e) === spec.v) return `void (${load})`;
  const pattern = [...(def !== null ? [`default: ${def}`] : []), ...specs].join(', ');
  return `void ({ ${pattern} } = ${load})`;
}

/**
 * The cell as an async function expression: top-level var/let/const, function, class and
 * import declarations become globals; with `withReturn`, a trailing expression statement is
 * returned. Returns null when the code has a shape this rewriter does not handle.
 */
function asyncWrap(src, withReturn) {
  const toks = tokenize(src);
  const starts = statementStarts(toks);
  const edits = [];
  const hoisted = [];
  const lastOf = (si) => {
    let last = (si + 1 < starts.length ? starts[si + 1] : toks.length) - 1;
    if (toks[last].t === 'punct' && toks[last].v === ';' && last > starts[si]) last -= 1;
    return last;
  };
  for (let si = 0; si < starts.length; si += 1) {
    const k = starts[si];
    const tok = toks[k];
    const next = toks[k + 1];
    if (tok.t !== 'name' || next === undefined) continue;
    const last = lastOf(si);
    if ((tok.v === 'var' || tok.v === 'let' || tok.v === 'const') && (next.t === 'name' || next.v === '[' || next.v === '{')) {
      edits.push({ s: tok.s, e: tok.e, text: 'void (' });
      // Declarators without an initialiser: `let x` → `x = undefined`; `var x` keeps a value.
      let a = k + 1;
      for (let j = k + 1; j <= last + 1; j += 1) {
        if (j === last + 1 || (toks[j].d === 0 && toks[j].v === ',' && toks[j].t === 'punct')) {
          if (j - a === 1 && toks[a].t === 'name') {
            const x = toks[a].v;
            edits.push({ s: toks[a].s, e: toks[a].e, text: tok.v === 'var' ? `${x} = typeof ${x} === "undefined" ? undefined : ${x}` : `${x} = undefined` });
          }
          a = j + 1;
        }
      }
      edits.push({ s: toks[last].e, e: toks[last].e, text: ')' });
    } else if (tok.v === 'function' || (tok.v === 'async' && next.v === 'function' && !next.nl)) {
      let j = tok.v === 'async' ? k + 2 : k + 1;
      if (toks[j] && toks[j].v === '*') j += 1;
      if (toks[j] && toks[j].t === 'name') hoisted.push(toks[j].v);
    } else if (tok.v === 'class' && next.t === 'name' && next.v !== 'extends') {
      let body = k + 2;
      while (body <= last && !(toks[body].d === 0 && toks[body].v === '{')) body += 1;
      if (body > last || toks[body].m < 0) return null;
      edits.push({ s: tok.s, e: tok.s, text: `${next.v} = ` });
      edits.push({ s: toks[toks[body].m].e, e: toks[toks[body].m].e, text: ';' });
    } else if (tok.v === 'import' && next.v !== '(' && next.v !== '.') {
      const text = rewriteImport(src, toks, k, last);
      if (text === null) return null;
      edits.push({ s: tok.s, e: toks[last].e, text });
    }
  }
  if (withReturn && starts.length > 0) {
    const si = starts.length - 1;
    const k = starts[si];
    const last = lastOf(si);
    if (isExpressionStatement(toks, k) && !(toks[last].t === 'punct' && toks[last].v === ';')) {
      edits.push({ s: toks[k].s, e: toks[k].s, text: 'return (' });
      edits.push({ s: toks[last].e, e: toks[last].e, text: ')' });
    }
  }
  edits.sort((x, y) => x.s - y.s);
  let out = '';
  let pos = 0;
  for (const ed of edits) {
    if (ed.s < pos) return null;
    out += src.slice(pos, ed.s) + ed.text;
    pos = ed.e;
  }
  out += src.slice(pos);
  // Function declarations are hoisted, so they can be published before the body runs.
  const publish = hoisted.map((x) => `globalThis[${stringify(x)}] = ${x};`).join(' ');
  // Same first line as the cell: line numbers in stack traces stay right.
  return `(async () => {${publish} ${out}\n})()`;
}

// --- the cell's processes ----------------------------------------------------------------

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

function liveStrays() {
  const pids = SCOPE === 'descendants' ? descendants() : allPIDs().filter((p) => !PROTECTED.has(p));
  // A zombie is dead already; libuv reaps our own children on its next turn.
  return pids.filter((pid) => {
    const st = statOf(pid);
    return st !== null && st.state !== 'Z';
  });
}

/** SIGKILLs the cell's leftover processes and waits (bounded) until they are gone. */
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

function show(value) {
  const bundle = sluice.mimeBundle(value);
  if (bundle !== null) emit({ type: 'result', data: bundle });
}

async function runCell(msg) {
  const cell = { nonce: msg.nonce, failure: null, ended: false };
  msg.nonce = undefined;
  // Every callback the cell schedules carries it, so its output after the cell is known.
  return cellContext.run(cell, () => runCellIn(cell, msg));
}

async function runCellIn(cell, msg) {
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
  if (value !== undefined) {
    try {
      const flushed = flushStd();
      if (flushed !== null) await flushed;
      show(value);
    } catch (err) {
      printError(err);
    }
  }
  const flushed = flushStd();
  if (flushed !== null) await flushed;
  finishCell(cell, status, exitCode);
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

function finishCell(cell, status, exitCode, exiting = false) {
  restoreCellEnv();
  cell.ended = true;
  state.cell = null;
  state.input.close();
  try {
    killStrays();
  } catch (err) {
    printError(err);
  }
  const broken = brokenStdio();
  try {
    // Every event of the cell is placed, and all its output read, before its end.
    emit({ type: 'sync' });
  } catch {
    // the events socket is gone; cell_done still ends the cell
  }
  tell({ type: 'sluice.cell_done', nonce: cell.nonce, status, exit_code: exitCode, ...(exiting || broken ? { exiting: true } : {}), ...(broken ? { broken } : {}) });
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
