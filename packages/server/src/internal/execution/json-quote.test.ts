import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteJSON } from './json-quote.js';
import { serialise } from './event-log.js';

/** Texts whose slices fall on every awkward character: commas, quotes, backslashes, pairs, controls. */
function awkwardTexts(): string[] {
  const out: string[] = [];
  const specials = [',', '"', '\\', '",', '\\",', '😀', '\ud800', '\udc00', '\n', '\r\n', '\u0000', '\u001b[0m', '\u2028', 'é', 'ÿ', '\u007f'];
  for (const s of specials) {
    // The special text at every offset around the slice boundaries (192, 384, …).
    for (let at = 180; at < 200; at++) {
      out.push('a'.repeat(at) + s + 'b'.repeat(500));
      out.push('a'.repeat(at) + s.repeat(300));
    }
  }
  out.push(','.repeat(1000), '"'.repeat(1000), '\\'.repeat(1000), '😀'.repeat(1000), '\ud800'.repeat(1000), '\udc00'.repeat(1000));
  out.push(`${'x'.repeat(191)},${'"'.repeat(500)}`, `${'x'.repeat(190)}",","${'y'.repeat(400)}`);
  out.push(('x'.repeat(63) + '\n').repeat(1024));
  // Every code unit 0–0x10000 once (lone surrogates included), in a pseudo-random order.
  let seed = 7;
  const units: number[] = [];
  for (let i = 0; i < 0x10000; i++) units.push(i);
  for (let i = units.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    const t = units[i] ?? 0;
    units[i] = units[j] ?? 0;
    units[j] = t;
  }
  out.push(String.fromCharCode(...units.slice(0, 30000)), String.fromCharCode(...units.slice(30000)));
  return out;
}

test('quoteJSON is JSON.stringify, character for character', () => {
  for (const text of ['', 'a', ',', '"x"', ...awkwardTexts()]) {
    assert.equal(quoteJSON(text), JSON.stringify(text), `text of ${text.length} units starting ${JSON.stringify(text.slice(0, 40))}`);
  }
});

test('serialise writes an output event exactly as JSON.stringify of the event would', () => {
  for (const content of ['', 'hi\n', ...awkwardTexts().slice(0, 50)]) {
    const event: { type: string; content: string } = { type: 'stdout', content };
    const json = serialise(event, 7);
    const parsed = JSON.parse(json) as { ts: number };
    assert.equal(json, JSON.stringify({ type: 'stdout', seq: 7, ts: parsed.ts, content }));
  }
  // Other events keep the generic path, their fields in order.
  const progress: { type: string; message: string; percent: number } = { type: 'progress', message: 'a,"b"', percent: 5 };
  const json = serialise(progress, 3);
  const { ts } = JSON.parse(json) as { ts: number };
  assert.equal(json, JSON.stringify({ type: 'progress', seq: 3, ts, message: 'a,"b"', percent: 5 }));
  const bare = serialise({ type: 'start' }, 1);
  assert.equal(bare, JSON.stringify({ type: 'start', seq: 1, ts: (JSON.parse(bare) as { ts: number }).ts }));
});
