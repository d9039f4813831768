'use strict';
/**
 * Sluice helpers: structured progress and rich results from code running in Sluice.
 *
 *   const { progress, result, html } = require('sluice');   // or: import { progress } from 'sluice'
 *   progress(40, 'Loading');        // or progress('Loading'), progress({ percent, message, data })
 *   result(html('<b>done</b>'));
 *
 * Events go, one JSON object per line, to the fd named by SLUICE_EVENTS_FD (docs/events.md,
 * "Code → Sluice channel"), each with one synchronous write. stdout and stderr are made
 * blocking on first use so that console output written before an event is out before it; when
 * the fd is Sluice's socket the line carries "sync":true and the call returns only once the
 * server has answered one byte (0x06): the event is then in the log after everything printed
 * before it and before anything printed after it.
 *
 * Outside Sluice (no SLUICE_EVENTS_FD, or it names no pipe or socket, as in a child process
 * that did not inherit it): progress() prints a one-line summary to stderr and result()
 * prints the plain-text form of the value to stdout; nothing throws.
 */
const fs = require('node:fs');
const util = require('node:util');

// Taken at load: a program (or a kernel cell) that patches JSON must not break its events.
const { stringify, parse } = JSON;

/** Values tagged by html(), png()… carry their mime data under this symbol. */
const MIME = Symbol.for('sluice.mime');
/** application/json is skipped above this size (text/plain still describes the value). */
const JSON_LIMIT = 1 << 20;

let eventsFD; // undefined: not probed yet; -1: none
let sync = false; // the fd is a socket: the server acknowledges lines that ask for it
let owed = 0; // acknowledgements not read yet (lines sent without waiting, or a read cut short by an exception)

function getEventsFD() {
  if (eventsFD !== undefined) return eventsFD;
  eventsFD = -1;
  const raw = process.env.SLUICE_EVENTS_FD;
  if (raw !== undefined && /^\d+$/.test(raw)) {
    try {
      const st = fs.fstatSync(Number(raw));
      // A child that did not inherit the fd may have a file of its own there.
      if (st.isFIFO() || st.isSocket()) eventsFD = Number(raw);
      sync = st.isSocket();
    } catch {
      // no such fd
    }
  }
  // Pipes are async in Node once full; blocking writes keep stdout ahead of the events.
  if (eventsFD >= 0) blockStd();
  return eventsFD;
}

/** Makes process.stdout and stderr write synchronously when they are pipes. */
function blockStd() {
  for (const s of [process.stdout, process.stderr]) {
    try {
      if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
    } catch {
      // not a pipe
    }
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms) {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Writes all of `buf` to `fd` synchronously, waiting out EAGAIN on a non-blocking fd. */
function writeAllSync(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if (err && err.code === 'EAGAIN') sleepMs(1);
      else throw err;
    }
  }
}

const ackBuf = Buffer.alloc(1);

/** Waits for the server's one-byte acknowledgement; false at end of file or on an error. */
function readAckSync(fd) {
  for (;;) {
    try {
      return fs.readSync(fd, ackBuf, 0, 1, null) === 1;
    } catch (err) {
      if (err && err.code === 'EAGAIN') sleepMs(1);
      else if (!err || err.code !== 'EINTR') return false;
    }
  }
}

function emit(event) {
  if (!send([event])) return false;
  settle();
  return true;
}

/**
 * Writes `events` in one write without waiting for their answers (the next emit() or settle()
 * reads them): for the kernel's end of a cell, when nothing of the cell can print after it.
 */
function send(events) {
  const fd = getEventsFD();
  if (fd < 0) return false;
  let text = '';
  for (const event of events) text += `${stringify(sync ? { ...event, sync: true } : event)}\n`;
  try {
    writeAllSync(fd, Buffer.from(text));
  } catch {
    return false;
  }
  if (sync) owed += events.length;
  return true;
}

/** Reads the answers owed for lines already written. */
function settle() {
  const fd = getEventsFD();
  while (owed > 0 && fd >= 0) {
    if (!readAckSync(fd)) {
      owed = 0;
      break;
    }
    owed--;
  }
}

function jsonSafe(value) {
  try {
    const text = stringify(value);
    return text === undefined ? String(value) : parse(text);
  } catch {
    return util.inspect(value);
  }
}

/**
 * Reports progress: progress(40), progress(40, 'Loading'), progress('Loading'),
 * progress(40, 'Loading', { step: 2 }) or progress({ percent, message, data }).
 * percent is clamped to 0..100; data is any JSON-able value.
 */
function progress(percent, message, data) {
  if (percent !== null && typeof percent === 'object') ({ percent, message, data } = percent);
  else if (typeof percent === 'string' && message === undefined) [percent, message] = [undefined, percent];
  const event = { type: 'progress' };
  if (percent !== undefined && percent !== null) {
    if (typeof percent !== 'number') throw new TypeError(`progress(percent) expects a number from 0 to 100, got ${typeof percent}`);
    if (!Number.isNaN(percent)) event.percent = Math.min(100, Math.max(0, percent));
  }
  if (message !== undefined && message !== null) event.message = String(message);
  if (data !== undefined) event.data = jsonSafe(data);
  if (!emit(event)) {
    const parts = [];
    if (event.percent !== undefined) parts.push(`${event.percent}%`);
    if (event.message !== undefined) parts.push(event.message);
    process.stderr.write(`[progress] ${parts.join(' ')}\n`);
  }
}

/** Sends `value` as a rich result (see mimeBundle); undefined sends nothing. */
function result(value) {
  const bundle = mimeBundle(value);
  if (bundle === null) return;
  if (!emit({ type: 'result', data: bundle })) process.stdout.write(`${bundle['text/plain']}\n`);
}

function callRepr(value, name) {
  let fn;
  try {
    fn = value[name];
  } catch {
    return undefined;
  }
  if (typeof fn !== 'function') return undefined;
  try {
    return fn.call(value);
  } catch {
    return undefined; // a broken _repr_*_ costs that one mime type, never the cell
  }
}

function base64(data) {
  if (Buffer.isBuffer(data) || data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
  return typeof data === 'string' ? data : undefined;
}

function isPlainData(value, depth, seen) {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > 100 || seen.has(value)) return false;
  seen.add(value);
  let ok;
  if (Array.isArray(value)) {
    ok = Object.getPrototypeOf(value) === Array.prototype && value.every((v) => isPlainData(v, depth + 1, seen));
  } else {
    const proto = Object.getPrototypeOf(value);
    ok = (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(value).length === 0 &&
      Object.values(value).every((v) => isPlainData(v, depth + 1, seen));
  }
  seen.delete(value);
  return ok;
}

function plainJSON(value) {
  if (!isPlainData(value, 0, new Set())) return undefined;
  try {
    const text = stringify(value);
    return text !== undefined && text.length <= JSON_LIMIT ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The mime bundle of a value, or null for undefined: always text/plain (util.inspect); the data
 * of html(), markdown(), svg(), png(), jpeg(); text/html, image/svg+xml, text/markdown,
 * image/png from `_repr_html_()`, `_repr_svg_()`, `_repr_markdown_()`, `_repr_png_()`;
 * application/json from `_repr_json_()` or for plain JSON data (plain objects, arrays, strings,
 * finite numbers, booleans, null).
 */
function mimeBundle(value) {
  if (value === undefined) return null;
  let plain;
  try {
    plain = util.inspect(value);
  } catch (err) {
    plain = `[uninspectable value: ${err && err.message}]`;
  }
  const bundle = { 'text/plain': plain };
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
    const json = plainJSON(value);
    if (json !== undefined) bundle['application/json'] = json;
    return bundle;
  }
  const tagged = value[MIME];
  if (tagged && typeof tagged === 'object') Object.assign(bundle, tagged);
  for (const [mime, name] of [['text/html', '_repr_html_'], ['image/svg+xml', '_repr_svg_'], ['text/markdown', '_repr_markdown_']]) {
    if (bundle[mime] !== undefined) continue;
    const text = callRepr(value, name);
    if (typeof text === 'string') bundle[mime] = text;
  }
  if (bundle['image/png'] === undefined) {
    const png64 = base64(callRepr(value, '_repr_png_'));
    if (png64) bundle['image/png'] = png64;
  }
  if (bundle['application/json'] === undefined && tagged === undefined) {
    const fromRepr = callRepr(value, '_repr_json_');
    const json = plainJSON(fromRepr !== undefined ? fromRepr : value);
    if (json !== undefined) bundle['application/json'] = json;
  }
  return bundle;
}

class Rich {
  constructor(kind, data) {
    Object.defineProperty(this, MIME, { value: data });
    Object.defineProperty(this, 'kind', { value: kind });
  }

  [util.inspect.custom]() {
    return `[${this.kind}]`;
  }
}

function checkString(name, value) {
  if (typeof value !== 'string') throw new TypeError(`${name}() expects a string, got ${typeof value}`);
}

function checkBytes(name, value) {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name}() expects a Buffer or Uint8Array, got ${typeof value}`);
}

/** Marks a string as HTML for result(): result(html('<b>hi</b>')). */
function html(text) {
  checkString('html', text);
  return new Rich('html', { 'text/html': text });
}

/** Marks a string as Markdown for result(). */
function markdown(text) {
  checkString('markdown', text);
  return new Rich('markdown', { 'text/markdown': text });
}

/** Marks a string as an SVG image for result(). */
function svg(text) {
  checkString('svg', text);
  return new Rich('svg', { 'image/svg+xml': text });
}

/** Marks a Buffer as a PNG image for result(). */
function png(bytes) {
  checkBytes('png', bytes);
  return new Rich('png', { 'image/png': base64(bytes) });
}

/** Marks a Buffer as a JPEG image for result(). */
function jpeg(bytes) {
  checkBytes('jpeg', bytes);
  return new Rich('jpeg', { 'image/jpeg': base64(bytes) });
}

module.exports = { progress, result, display: result, mimeBundle, html, markdown, svg, png, jpeg };
// For Sluice's own kernel (not part of the API; not enumerable).
Object.defineProperty(module.exports, '_io', { value: Object.freeze({ blockStd, sleepMs, writeAllSync, emit, send, settle }) });
