import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NDJSONDecoder, decodeNDJSONStream, encodeEventNDJSON, type NDJSONDecoderOptions } from './ndjson.js';

const utf8 = new TextEncoder();

function decodeChunks(chunks: Iterable<Uint8Array | string>, options?: NDJSONDecoderOptions): unknown[] {
  const d = new NDJSONDecoder(options);
  const out: unknown[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

function syntaxErrorAt(line: number): (err: unknown) => boolean {
  return (err) => err instanceof SyntaxError && err.message.includes(`line ${line} `);
}

test('encodeEventNDJSON appends one LF', () => {
  assert.equal(encodeEventNDJSON('{"seq":1}'), '{"seq":1}\n');
});

test('NDJSON lines decode to their JSON values in order', () => {
  const values = [{ type: 'stdout', seq: 1, content: 'a\nb' }, [1, 2], 'str', 3, null, true];
  const wire = values.map((v) => encodeEventNDJSON(JSON.stringify(v))).join('');
  assert.deepEqual(decodeChunks([wire]), values);
});

test('CRLF line endings are tolerated', () => {
  assert.deepEqual(decodeChunks(['{"a":1}\r\n{"b":2}\r\n']), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(decodeChunks(['{"a":1}\r', '\n{"b":2}\r', '\n']), [{ a: 1 }, { b: 2 }], 'CR and LF in different chunks');
});

test('blank and whitespace-only lines are skipped', () => {
  assert.deepEqual(decodeChunks(['\n\n{"a":1}\n\r\n \t \n{"b":2}\n\n']), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(decodeChunks(['']), []);
});

test('every two-way split and byte-by-byte feeding yield the same values, multi-byte characters included', () => {
  const values = [{ s: '€uro' }, { s: '😀 emoji' }, { s: 'é\u2028' }, { n: 1 }];
  const wire = utf8.encode(values.map((v) => `${JSON.stringify(v)}\r\n`).join(''));
  for (let i = 0; i <= wire.length; i++) {
    assert.deepEqual(decodeChunks([wire.subarray(0, i), wire.subarray(i)]), values, `split at ${i}`);
  }
  assert.deepEqual(decodeChunks(Array.from(wire, (_, i) => wire.subarray(i, i + 1))), values);
});

test('a leading BOM is stripped', () => {
  assert.deepEqual(decodeChunks([Uint8Array.of(0xef, 0xbb), Uint8Array.of(0xbf, 0x31, 0x0a)]), [1]);
});

test('a last line without a trailing LF is parsed at end()', () => {
  const d = new NDJSONDecoder();
  assert.deepEqual(d.push('{"a":1}\n{"b":'), [{ a: 1 }]);
  assert.deepEqual(d.push('2}'), []);
  assert.deepEqual(d.end(), [{ b: 2 }]);
});

test('a body cut off mid-line fails at end() with the line number', () => {
  const d = new NDJSONDecoder();
  d.push('{"a":1}\n\n{"b":');
  assert.throws(() => d.end(), syntaxErrorAt(3));
});

test('malformed JSON throws a SyntaxError naming the line, counting blank lines, with the parse error as cause', () => {
  const d = new NDJSONDecoder();
  let caught: unknown;
  try {
    d.push('{"a":1}\n\n\r\n{nope}\n');
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SyntaxError);
  assert.match(caught.message, /^NDJSON line 4 is not valid JSON \(.+\): "\{nope\}"$/);
  assert.ok(caught.cause instanceof SyntaxError);
});

test('invalid UTF-8 surfaces as U+FFFD, so inside a string it still parses', () => {
  const bad = Uint8Array.of(0x22, 0xff, 0x22, 0x0a); // "\xff"
  assert.deepEqual(decodeChunks([bad]), ['\uFFFD']);
  assert.throws(() => decodeChunks([Uint8Array.of(0xff, 0x0a)]), syntaxErrorAt(1));
});

test('a line over maxLineBytes throws a RangeError naming the line, whether whole or piecemeal', () => {
  const options = { maxLineBytes: 10 };
  assert.deepEqual(decodeChunks(['"12345678"\n'], options), ['12345678'], 'exactly at the bound');
  assert.throws(() => decodeChunks(['1\n"123456789"\n'], options), (err: unknown) => err instanceof RangeError && /line 2 /.test(err.message));
  const d = new NDJSONDecoder(options);
  d.push('"12345');
  assert.throws(() => d.push('67890'), RangeError);
  assert.throws(() => new NDJSONDecoder({ maxLineBytes: -1 }), RangeError);
});

test('string and byte chunks can be mixed', () => {
  assert.deepEqual(decodeChunks(['{"s":"', utf8.encode('€"}'), '\n']), [{ s: '€' }]);
});

function streamOf(chunks: readonly string[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const c = chunks[i++];
      if (c === undefined) controller.close();
      else controller.enqueue(utf8.encode(c));
    },
    cancel() {
      onCancel?.();
    },
  });
}

test('decodeNDJSONStream reads a ReadableStream to the end and releases its lock', async () => {
  const body = streamOf(['{"seq":1}\n{"se', 'q":2}\n', '{"seq":3}']);
  const out: unknown[] = [];
  for await (const v of decodeNDJSONStream(body)) out.push(v);
  assert.deepEqual(out, [{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
  assert.equal(body.locked, false);
});

test('decodeNDJSONStream reads an async iterable', async () => {
  async function* gen(): AsyncGenerator<Uint8Array | string> {
    yield '[1';
    yield utf8.encode(']\n');
  }
  const out: unknown[] = [];
  for await (const v of decodeNDJSONStream(gen())) out.push(v);
  assert.deepEqual(out, [[1]]);
});

test('a malformed line fails decodeNDJSONStream and cancels the body', async () => {
  let cancelled = false;
  const body = streamOf(['1\n', 'oops\n', '3\n'], () => {
    cancelled = true;
  });
  const out: unknown[] = [];
  await assert.rejects(async () => {
    for await (const v of decodeNDJSONStream(body)) out.push(v);
  }, syntaxErrorAt(2));
  assert.deepEqual(out, [1]);
  assert.equal(cancelled, true);
  assert.equal(body.locked, false);
});

test('aborting decodeNDJSONStream while it waits rejects with the abort reason and cancels the body', async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(utf8.encode('1\n'));
    },
    cancel() {
      cancelled = true;
    },
  });
  const ac = new AbortController();
  const out: unknown[] = [];
  await assert.rejects(async () => {
    for await (const v of decodeNDJSONStream(body, ac.signal)) {
      out.push(v);
      setTimeout(() => ac.abort(new Error('stop')), 5);
    }
  }, /stop/);
  assert.deepEqual(out, [1]);
  assert.equal(cancelled, true);
  assert.equal(body.locked, false);
});
