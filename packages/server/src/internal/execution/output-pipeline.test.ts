import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutputStream } from '@sluice/protocol';
import { OutputPipeline } from './output-pipeline.js';

type Out = { kind: 'chunk'; stream: OutputStream; content: string } | { kind: 'truncated'; stream: OutputStream; dropped: number };

function collect(opts: ConstructorParameters<typeof OutputPipeline>[1]): { p: OutputPipeline; out: Out[] } {
  const out: Out[] = [];
  const p = new OutputPipeline(
    {
      chunk: (stream, content) => out.push({ kind: 'chunk', stream, content }),
      truncated: (stream, dropped) => out.push({ kind: 'truncated', stream, dropped }),
    },
    opts,
  );
  return { p, out };
}

const text = (out: Out[], stream: OutputStream): string =>
  out.map((o) => (o.kind === 'chunk' && o.stream === stream ? o.content : '')).join('');

test('a character split across reads comes out whole, never as U+FFFD', () => {
  const { p, out } = collect({ limitBytes: 1 << 20 });
  const euro = Buffer.from('€');
  p.write('stdout', euro.subarray(0, 1));
  p.flush();
  p.write('stdout', euro.subarray(1, 2));
  p.flush();
  p.write('stdout', euro.subarray(2));
  p.finish();
  assert.equal(text(out, 'stdout'), '€');
  assert.ok(out.every((o) => o.kind !== 'chunk' || !o.content.includes('\uFFFD')));
});

test('invalid bytes become U+FFFD and nothing else is lost', () => {
  const { p, out } = collect({ limitBytes: 1 << 20 });
  p.write('stdout', Buffer.from([0x61, 0xff, 0xfe, 0x62]));
  p.finish();
  assert.equal(text(out, 'stdout'), 'a\uFFFD\uFFFDb');
});

test('a dangling partial character at the end decodes as U+FFFD', () => {
  const { p, out } = collect({ limitBytes: 1 << 20 });
  p.write('stdout', Buffer.from([0x61, 0xe2, 0x82]));
  p.finish();
  assert.equal(text(out, 'stdout'), 'a\uFFFD');
});

/** Resolves once `cond` holds; fails after `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

test('a lone write after a quiet spell is emitted at once, with no timer', () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 60_000 });
  p.write('stdout', Buffer.from('hello\n'));
  assert.deepEqual(out, [{ kind: 'chunk', stream: 'stdout', content: 'hello\n' }]);
  p.finish();
});

test('a partial line waits for its newline, then goes at once', async () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 60_000 });
  p.write('stdout', Buffer.from('ready'));
  assert.equal(out.length, 0);
  p.write('stdout', Buffer.from('\n'));
  assert.deepEqual(out, [{ kind: 'chunk', stream: 'stdout', content: 'ready\n' }]);
  p.finish();
});

test('a partial line alone is emitted after the window', async () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 20 });
  p.write('stdout', Buffer.from('Name: '));
  assert.equal(out.length, 0);
  await until(() => out.length === 1);
  assert.equal(text(out, 'stdout'), 'Name: ');
  p.finish();
});

test('writes that follow an emit within the flush window are coalesced into one chunk', async () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 200 });
  for (let i = 0; i < 10; i++) p.write('stdout', Buffer.from(`line ${i}\n`));
  // The first went at once; the other nine wait for the end of its window.
  assert.equal(out.length, 1);
  await until(() => out.length === 2);
  assert.equal(text(out, 'stdout'), Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join(''));
  p.finish();
});

test('a write after the window has passed goes at once again', async () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 20 });
  p.write('stdout', Buffer.from('a\n'));
  const t0 = performance.now();
  await until(() => performance.now() - t0 > 25);
  p.write('stdout', Buffer.from('b\n'));
  assert.equal(out.length, 2);
  p.finish();
});

test('chunks never exceed chunkBytes and stay on character boundaries', () => {
  const { p, out } = collect({ limitBytes: 1 << 20, chunkBytes: 10 });
  const s = '€'.repeat(100);
  p.write('stdout', Buffer.from(s));
  p.finish();
  assert.equal(text(out, 'stdout'), s);
  for (const o of out) if (o.kind === 'chunk') assert.ok(Buffer.byteLength(o.content) <= 10);
});

test('switching streams flushes, keeping the order as read', () => {
  const { p, out } = collect({ limitBytes: 1 << 20, flushMs: 1000 });
  p.write('stdout', Buffer.from('a'));
  p.write('stderr', Buffer.from('b'));
  p.write('stdout', Buffer.from('c'));
  p.finish();
  assert.deepEqual(
    out.map((o) => (o.kind === 'chunk' ? `${o.stream}:${o.content}` : '')),
    ['stdout:a', 'stderr:b', 'stdout:c'],
  );
});

test('over the limit, the head and the tail are kept and the middle is reported dropped', () => {
  const { p, out } = collect({ limitBytes: 1000, tailBytes: 200, chunkBytes: 64 });
  const lines = Array.from({ length: 500 }, (_, i) => `${String(i).padStart(4, '0')}\n`).join(''); // 2500 bytes
  p.write('stdout', Buffer.from(lines));
  p.finish();
  const kept = text(out, 'stdout');
  const trunc = out.filter((o) => o.kind === 'truncated');
  assert.deepEqual(trunc, [{ kind: 'truncated', stream: 'stdout', dropped: 1500 }]);
  assert.equal(Buffer.byteLength(kept), 1000);
  assert.ok(kept.startsWith('0000\n0001\n'));
  assert.ok(kept.endsWith('0498\n0499\n'));
  // The truncated event comes after the head and before the tail.
  const idx = out.findIndex((o) => o.kind === 'truncated');
  assert.equal(text(out.slice(0, idx), 'stdout'), lines.slice(0, 800));
  assert.equal(text(out.slice(idx), 'stdout'), lines.slice(-200));
});

test('output exactly at the limit is not truncated', () => {
  const { p, out } = collect({ limitBytes: 100, tailBytes: 20 });
  p.write('stdout', Buffer.alloc(100, 0x61));
  p.finish();
  assert.equal(out.filter((o) => o.kind === 'truncated').length, 0);
  assert.equal(text(out, 'stdout').length, 100);
});

test('the tail cut lands on a character boundary', () => {
  const { p, out } = collect({ limitBytes: 40, tailBytes: 10 });
  p.write('stdout', Buffer.from('€'.repeat(50)));
  p.finish();
  const kept = text(out, 'stdout');
  assert.ok(!kept.includes('\uFFFD'));
  const dropped = out.reduce((n, o) => n + (o.kind === 'truncated' ? o.dropped : 0), 0);
  assert.equal(Buffer.byteLength(kept) + dropped, 150);
});

test('both streams are accounted separately when the middle is dropped', () => {
  const { p, out } = collect({ limitBytes: 100, tailBytes: 50 });
  p.write('stdout', Buffer.alloc(200, 0x6f));
  p.write('stderr', Buffer.alloc(200, 0x65));
  p.finish();
  const trunc = Object.fromEntries(out.flatMap((o) => (o.kind === 'truncated' ? [[o.stream, o.dropped]] : [])));
  assert.equal(trunc['stdout'], 150);
  assert.equal(trunc['stderr'], 150);
  assert.equal(text(out, 'stderr'), 'e'.repeat(50));
  assert.equal(p.totalBytes, 400);
});

test('memory stays bounded however much is written', () => {
  const { p, out } = collect({ limitBytes: 64 * 1024, tailBytes: 16 * 1024 });
  const block = Buffer.alloc(64 * 1024, 0x78);
  for (let i = 0; i < 2000; i++) p.write('stdout', block); // 128 MiB
  p.finish();
  assert.equal(Buffer.byteLength(text(out, 'stdout')), 64 * 1024);
  assert.equal(p.totalBytes, 2000 * 64 * 1024);
});
