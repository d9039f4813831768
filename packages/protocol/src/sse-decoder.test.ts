import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEDecoder, decodeSSEStream, readChunks, type SSEDecoderOptions, type SSEMessage } from './sse-decoder.js';
import { encodeSSE } from './sse-encoder.js';

const utf8 = new TextEncoder();

/** Concatenates text (UTF-8 encoded) and raw byte arrays into one buffer. */
function bytes(...parts: (string | readonly number[] | Uint8Array)[]): Uint8Array {
  const encoded = parts.map((p) => (typeof p === 'string' ? utf8.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(encoded.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of encoded) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Pushes every chunk into one decoder, then ends it; returns all messages in order. */
function decodeChunks(chunks: Iterable<Uint8Array | string>, options?: SSEDecoderOptions): SSEMessage[] {
  const d = new SSEDecoder(options);
  const out: SSEMessage[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

function decode(input: Uint8Array | string): SSEMessage[] {
  return decodeChunks([input]);
}

function datas(messages: readonly SSEMessage[]): string[] {
  return messages.map((m) => m.data);
}

function oneBytePerChunk(b: Uint8Array): Uint8Array[] {
  return Array.from(b, (_, i) => b.subarray(i, i + 1));
}

/** Every way to cut `b` into two pieces, plus one byte at a time. */
function* splits(b: Uint8Array): Generator<Uint8Array[]> {
  for (let i = 0; i <= b.length; i++) yield [b.subarray(0, i), b.subarray(i)];
  yield oneBytePerChunk(b);
}

const msg = (data: string, extra: Partial<SSEMessage> = {}): SSEMessage => ({ id: '', event: 'message', data, ...extra });

// The fixture: one event per row of the expected list, exercising a different rule each.
const FIXTURE_HEAD = bytes(
  'data:line1\ndata:line2\n\n', // two data lines join with LF
  ': a comment line\n',
  'data:no-space\n\n', // no space after the colon
  'data: cr-only\r\r', // lone CR line terminators
  'event: custom\ndata: custom:typed\n\n', // only the first colon splits
  'retry: 1500\nid: 42\r\ndata: with id\r\n\r\n', // CRLF terminators, id and retry
  'id: a\0b\ndata: null in id is ignored\n\n', // id with NUL ignored, 42 persists
  'data:  two spaces\n\n', // only one leading space is removed
  'data\n\n', // a line without colon is a field with an empty value
  'data:',
  [0xff, 0xfe], // invalid UTF-8: one U+FFFD each
  ' invalid utf8\n\n',
  'data: split-across-writes\r',
);
const FIXTURE_TAIL = bytes('\n\r\n'); // completes the CRLF split across the two pushes
const FIXTURE = bytes(FIXTURE_HEAD, FIXTURE_TAIL);
const FIXTURE_DATA = [
  'line1\nline2',
  'no-space',
  'cr-only',
  'custom:typed',
  'with id',
  'null in id is ignored',
  ' two spaces',
  '',
  '\uFFFD\uFFFD invalid utf8',
  'split-across-writes',
];
const FIXTURE_MESSAGES: SSEMessage[] = [
  msg('line1\nline2'),
  msg('no-space'),
  msg('cr-only'),
  msg('custom:typed', { event: 'custom' }),
  msg('with id', { id: '42', retry: 1500 }),
  msg('null in id is ignored', { id: '42' }),
  msg(' two spaces', { id: '42' }),
  msg('', { id: '42' }),
  msg('\uFFFD\uFFFD invalid utf8', { id: '42' }),
  msg('split-across-writes', { id: '42' }),
];

test('the fixture stream dispatches exactly the expected events when its last one is split across two pushes', () => {
  const d = new SSEDecoder();
  const first = d.push(FIXTURE_HEAD);
  assert.deepEqual(datas(first), FIXTURE_DATA.slice(0, -1), 'everything but the split event is out after the first push');
  const second = d.push(FIXTURE_TAIL);
  assert.deepEqual(datas(second), ['split-across-writes']);
  assert.deepEqual(d.end(), []);
  assert.deepEqual([...first, ...second], FIXTURE_MESSAGES);
  assert.equal(d.lastEventID, '42');
  assert.equal(d.retry, 1500);
});

test('every two-way split of the fixture, and feeding it byte by byte, yields the same events', () => {
  for (const chunks of splits(FIXTURE)) assert.deepEqual(decodeChunks(chunks), FIXTURE_MESSAGES);
});

test('every three-way split of a stream mixing CR, LF, CRLF, multi-byte characters and a BOM yields the same events', () => {
  const stream = bytes('\uFEFFid:€\r\nevent:x😀\rdata:a€\r\ndata:😀b\n\r\n:c\r\rdata:\r\n\n');
  const expected = [msg('a€\n😀b', { id: '€', event: 'x😀' }), msg('', { id: '€' })];
  assert.deepEqual(decode(stream), expected);
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const chunks = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
      assert.deepEqual(decodeChunks(chunks), expected, `split at ${i}, ${j}`);
    }
  }
});

test('CR, LF and CRLF all end a line, in any mix', () => {
  assert.deepEqual(datas(decode('data:a\rdata:b\ndata:c\r\ndata:d\r\n\r\n')), ['a\nb\nc\nd']);
  assert.deepEqual(datas(decode('data:a\n\rdata:b\r\r')), ['a', 'b'], 'LF then CR is two line breaks');
  assert.deepEqual(datas(decode('data:a\r\n\ndata:b\r\n\r')), ['a', 'b']);
});

test('a CR ending one chunk and an LF starting the next count as one line break', () => {
  assert.deepEqual(datas(decodeChunks(['data:x\r', '\ndata:y\r', '\n\r', '\n'])), ['x\ny']);
  // The same, with an empty chunk in between and as bytes.
  assert.deepEqual(datas(decodeChunks([bytes('data:x\r'), new Uint8Array(0), bytes('\ndata:y\n\n')])), ['x\ny']);
  // A CR at a chunk end followed by anything other than LF is a complete line break.
  assert.deepEqual(datas(decodeChunks(['data:x\r', '\r'])), ['x']);
  assert.deepEqual(datas(decodeChunks(['data:x\r', 'data:y\r', '\r'])), ['x\ny']);
});

test('a "€" and an emoji split across chunks at every byte decode intact', () => {
  for (const ch of ['€', '😀', 'é']) {
    const stream = bytes(`event:${ch}\nid:${ch}\ndata:${ch}${ch}\n\n`);
    for (const chunks of splits(stream)) {
      assert.deepEqual(decodeChunks(chunks), [msg(ch + ch, { id: ch, event: ch })], `character ${ch}`);
    }
  }
});

test('invalid UTF-8 becomes U+FFFD, including a truncated sequence at the end of the stream', () => {
  assert.deepEqual(datas(decode(bytes('data:', [0xff], 'x', [0xe2, 0x82], '\n\n'))), ['\uFFFDx\uFFFD']);
  // WPT format-utf-8: always UTF-8, whatever the Content-Type says.
  assert.deepEqual(datas(decode(bytes('data:ok', [0xe2, 0x80, 0xa6], '\n\n'))), ['ok…']);
  // A string chunk after a dangling partial sequence flushes it as U+FFFD first.
  assert.deepEqual(datas(decodeChunks([bytes('data:a', [0xe2, 0x82]), 'b\n\n'])), ['a\uFFFDb']);
});

test('one leading BOM is stripped, even when split across chunks', () => {
  const stream = bytes([0xef, 0xbb, 0xbf], 'data:1\n\n');
  for (const chunks of splits(stream)) assert.deepEqual(datas(decodeChunks(chunks)), ['1']);
  assert.deepEqual(datas(decode('\uFEFFdata:1\n\n')), ['1'], 'a string chunk at stream start too');
});

test('a BOM after the start is not stripped (WPT format-bom)', () => {
  // The second BOM makes the field name "\uFEFFdata", an unknown field.
  assert.deepEqual(datas(decode('\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n')), ['1', '3']);
});

test('only the first of two leading BOMs is stripped (WPT format-bom-2)', () => {
  assert.deepEqual(datas(decode('\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n')), ['2', '3']);
});

test('comment lines are ignored wherever they appear (WPT format-comments)', () => {
  const long = 'x'.repeat(2 * 1024);
  const stream = `data:1\r:\0\n:\r\ndata:2\n:${long}\rdata:3\n:data:fail\r:${long}\ndata:4\n\n`;
  assert.deepEqual(datas(decode(stream)), ['1\n2\n3\n4']);
  assert.deepEqual(decode(': only a comment\n\n'), [], 'a comment block dispatches nothing');
});

test('data lines without a colon add an empty line (WPT format-field-data)', () => {
  assert.deepEqual(datas(decode('data:\n\ndata\ndata\n\ndata:test\n\n\n')), ['', '\n', 'test']);
});

test('exactly one space after the colon is removed, never a tab (WPT format-leading-space)', () => {
  assert.deepEqual(datas(decode('data:x\n\ndata: x\n\ndata:  x\n\n')), ['x', 'x', ' x']);
  assert.deepEqual(datas(decode('data:\ttest\rdata: \ndata:test\n\n')), ['\ttest\n\ntest']);
});

test('field names are case-sensitive and unknown fields are ignored (WPT format-field-parsing, format-field-unknown)', () => {
  const parsing =
    'data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n';
  assert.deepEqual(decode(parsing), [msg('\0\n 2\n1\n3\n\n4')]);
  const unknown = 'data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n';
  assert.deepEqual(decode(unknown), [msg('test\n\ntest')]);
  assert.deepEqual(decode('Event:x\nID:1\nRetry:5\ndata:y\n\n'), [msg('y')]);
});

test('line terminators of all kinds end fields (WPT format-newlines)', () => {
  assert.deepEqual(decode('data:test\r\ndata\ndata:test\r\n\r'), [msg('test\n\ntest')]);
});

test('NUL is ordinary data (WPT format-null-character)', () => {
  assert.deepEqual(decode('data:\0\n\n\n\n'), [msg('\0')]);
});

test('event names the type and resets after each dispatch; empty means "message" (WPT format-field-event, -event-empty)', () => {
  assert.deepEqual(decode('event:test\ndata:x\n\ndata:x\n\n\n'), [msg('x', { event: 'test' }), msg('x')]);
  assert.deepEqual(decode('event: \ndata:data\n\n\n'), [msg('data')]);
  // A block without data still resets the event type.
  assert.deepEqual(decode('event:ghost\n\ndata:x\n\n'), [msg('x')]);
});

test('the last event ID persists across events until an id field changes it (WPT format-field-id)', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('id: …\ndata:hello\n\ndata:again\n\nid\ndata:cleared\n\n'), [
    msg('hello', { id: '…' }),
    msg('again', { id: '…' }),
    msg('cleared'),
  ]);
  assert.equal(d.lastEventID, '');
});

test('an id containing NUL is ignored (WPT format-field-id-null)', () => {
  assert.deepEqual(decode('id:1\ndata:x\n\nid:2\0\ndata:y\n\nid:\0\ndata:z\n\n'), [
    msg('x', { id: '1' }),
    msg('y', { id: '1' }),
    msg('z', { id: '1' }),
  ]);
});

test('an id-only block updates lastEventID without dispatching anything', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('id: 7\n'), []);
  assert.equal(d.lastEventID, '', 'the ID buffer only becomes the last event ID at a blank line');
  assert.deepEqual(d.push('\n'), []);
  assert.equal(d.lastEventID, '7');
});

test('an event cut off before its blank line is discarded, with its id (WPT format-data-before-final-empty-line)', () => {
  const d = new SSEDecoder();
  const out = [...d.push('retry:1000\ndata:test1\n\nid:test\ndata:test2\n'), ...d.end()];
  assert.deepEqual(out, [msg('test1', { retry: 1000 })]);
  assert.equal(d.lastEventID, '');
  assert.deepEqual(decode('data:a\n\ndata:b'), [msg('a')], 'an unterminated line');
  assert.deepEqual(decode('data:a\n\ndata:b\r'), [msg('a')], 'a terminated line but no blank line');
  assert.deepEqual(decode('data:a\n\ndata:b\r\n'), [msg('a')]);
});

test('retry takes a decimal integer, leading zeros included (WPT format-field-retry)', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('retry:03000\ndata:x\n\n'), [msg('x', { retry: 3000 })]);
  assert.equal(d.retry, 3000);
  assert.deepEqual(d.push('data:y\n\n'), [msg('y')], 'retry is reported only on the event that carried it');
  assert.equal(d.retry, 3000, 'but the reconnection time stays');
  assert.deepEqual(d.push('retry: 100\n\n'), [], 'a retry-only block dispatches nothing');
  assert.equal(d.retry, 100);
});

test('a bogus or empty retry is ignored and keeps the previous value (WPT format-field-retry-bogus, -empty)', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('retry:3000\nretry:1000x\ndata:x\n\n'), [msg('x', { retry: 3000 })]);
  for (const bogus of ['retry\n', 'retry:\n', 'retry: -1\n', 'retry:1e3\n', 'retry:1.5\n', 'retry:  5\n', 'retry:+5\n', 'retry:٣\n', `retry:${'9'.repeat(400)}\n`]) {
    assert.deepEqual(d.push(`${bogus}data:y\n\n`), [msg('y')], JSON.stringify(bogus));
  }
  assert.equal(d.retry, 3000);
  assert.equal(new SSEDecoder().retry, undefined);
});

test('a several-megabyte event decodes whole, from small chunks and from one', () => {
  const big = 'x€😀\0'.repeat(1024 * 1024); // ~9 MB of UTF-8
  const stream = bytes(`data:${big}\ndata:${big}\n\n`);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += 65_536) chunks.push(stream.subarray(i, i + 65_536));
  const expected = [msg(`${big}\n${big}`)];
  assert.deepEqual(decodeChunks(chunks), expected);
  assert.deepEqual(decode(stream), expected);
});

test('a line over maxLineBytes throws a RangeError, whether it arrives whole or piecemeal', () => {
  const options = { maxLineBytes: 16 };
  assert.deepEqual(decodeChunks([`data:${'x'.repeat(11)}\n\n`], options), [msg('x'.repeat(11))], 'exactly at the bound');
  assert.throws(() => decodeChunks([`data:${'x'.repeat(12)}\n\n`], options), RangeError);
  const d = new SSEDecoder(options);
  d.push('data:xxxxx');
  assert.throws(() => d.push('yyyyyyyyyyyy'), /longer than 16 characters/);
  // An unterminated line is bounded before any terminator arrives.
  assert.throws(() => decodeChunks(['x'.repeat(17)], options), RangeError);
});

test('an event whose data lines add up past maxEventBytes throws a RangeError', () => {
  const d = new SSEDecoder({ maxLineBytes: 100, maxEventBytes: 10 });
  assert.deepEqual(d.push('data:1234\ndata:1234\n\n'), [msg('1234\n1234')]);
  assert.throws(() => d.push('data:1234\ndata:12345\n\n'), /maxEventBytes/);
});

test('invalid bounds are rejected', () => {
  assert.throws(() => new SSEDecoder({ maxLineBytes: 0 }), RangeError);
  assert.throws(() => new SSEDecoder({ maxEventBytes: 1.5 }), RangeError);
});

test('end() starts a new stream that keeps the last event ID and retry, like an EventSource reconnecting', () => {
  const d = new SSEDecoder();
  d.push('retry: 250\nid: 5\ndata: a\n\ndata: partial');
  assert.deepEqual(d.end(), []);
  assert.deepEqual(d.push('\uFEFFdata: b\n\n'), [msg('b', { id: '5' })], 'BOM stripped again, partial line gone');
  assert.equal(d.lastEventID, '5');
  assert.equal(d.retry, 250);
});

test('string and byte chunks can be mixed', () => {
  assert.deepEqual(datas(decodeChunks(['data: a', bytes('€\r'), '\n', bytes('\n')])), ['a€']);
});

// Deterministic PRNG so a failure is reproducible.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', ' ', ':', '\r', '\n', '\r\n', 'data:', 'data: x', 'id:', 'event:', 'retry:', '\0', '\x1b[31mred\x1b[0m', '€', '😀', '\uFEFF', '\u2028', '\t', ''];

function randomString(rand: () => number, maxPieces: number, allowed: readonly string[] = PIECES): string {
  let s = '';
  const n = Math.floor(rand() * maxPieces);
  for (let i = 0; i < n; i++) s += allowed[Math.floor(rand() * allowed.length)] ?? '';
  return s;
}

test('encodeSSE → SSEDecoder round-trips tricky strings, with line breaks normalised to LF', () => {
  const fixed = ['', '\n', '\r', '\r\n', '\n\n', 'a\r\nb\rc\nd', 'data: injected\n\nevent: evil', ': not a comment', ' leading space', '\0', '\x1b[2J\x1b[H', 'end\r'];
  for (const data of fixed) {
    assert.deepEqual(decode(encodeSSE({ data })), [msg(data.replace(/\r\n|\r/g, '\n'))], JSON.stringify(data));
  }
  const rand = prng(20240611);
  const noBreaks = PIECES.filter((p) => !/[\r\n]/.test(p));
  const sent: { data: string; event: string; id: string }[] = [];
  let wire = '';
  for (let i = 0; i < 300; i++) {
    const m = { data: randomString(rand, 12), event: randomString(rand, 4, noBreaks), id: randomString(rand, 4, noBreaks).replaceAll('\0', '') };
    sent.push(m);
    wire += encodeSSE(m);
  }
  const expected = sent.map((m) => ({ id: m.id, event: m.event === '' ? 'message' : m.event, data: m.data.replace(/\r\n|\r/g, '\n') }));
  const encoded = utf8.encode(wire);
  // Random chunking of the whole wire.
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < encoded.length; ) {
    const len = Math.floor(rand() * 40);
    chunks.push(encoded.subarray(at, at + len));
    at += len;
  }
  assert.deepEqual(decodeChunks(chunks), expected);
  assert.deepEqual(decode(encoded), expected);
});

function streamOf(chunks: readonly Uint8Array[], onCancel?: (reason: unknown) => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const c = chunks[i++];
      if (c === undefined) controller.close();
      else controller.enqueue(c);
    },
    cancel(reason) {
      onCancel?.(reason);
    },
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

test('decodeSSEStream reads a ReadableStream to the end and releases its lock', async () => {
  const body = streamOf(oneBytePerChunk(FIXTURE));
  assert.deepEqual(await collect(decodeSSEStream(body)), FIXTURE_MESSAGES);
  assert.equal(body.locked, false);
});

test('decodeSSEStream reads an async iterable of bytes or strings', async () => {
  async function* gen(): AsyncGenerator<Uint8Array | string> {
    yield bytes('data: a');
    yield '\r';
    yield bytes('\n\n');
  }
  assert.deepEqual(await collect(decodeSSEStream(gen())), [msg('a')]);
});

test('breaking out of decodeSSEStream cancels the body and releases the lock', async () => {
  let cancelled = false;
  const body = streamOf([bytes('data:1\n\n'), bytes('data:2\n\n'), bytes('data:3\n\n')], () => {
    cancelled = true;
  });
  for await (const m of decodeSSEStream(body)) {
    assert.equal(m.data, '1');
    break;
  }
  assert.equal(cancelled, true);
  assert.equal(body.locked, false);
});

test('aborting decodeSSEStream while it waits for data rejects with the abort reason and cancels the body', async () => {
  let cancelReason: unknown;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes('data:first\n\n'));
      // …and then nothing more: the next read would wait forever.
    },
    cancel(reason) {
      cancelReason = reason;
    },
  });
  const ac = new AbortController();
  const reason = new Error('stop');
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const m of decodeSSEStream(body, ac.signal)) {
      seen.push(m.data);
      setTimeout(() => ac.abort(reason), 5);
    }
  }, reason);
  assert.deepEqual(seen, ['first']);
  assert.equal(cancelReason, reason);
  assert.equal(body.locked, false);
});

test('aborting an async-iterable source stops a pending wait and returns the iterator', async () => {
  let returned = false;
  const never: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<Uint8Array>>(() => {}),
      return: () => {
        returned = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('bye')), 5);
  await assert.rejects(collect(decodeSSEStream(never, ac.signal)), /bye/);
  assert.equal(returned, true);
});

test('an already-aborted signal rejects before the body is touched', async () => {
  const body = streamOf([bytes('data:x\n\n')]);
  const ac = new AbortController();
  ac.abort(new Error('early'));
  await assert.rejects(collect(decodeSSEStream(body, ac.signal)), /early/);
  assert.equal(body.locked, false);
  let started = false;
  async function* source(): AsyncGenerator<Uint8Array> {
    started = true;
    yield bytes('x');
  }
  await assert.rejects(collect(readChunks(source(), ac.signal)), /early/);
  assert.equal(started, false);
});
