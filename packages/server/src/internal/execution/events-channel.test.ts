import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventsChannel, parseChannelMessage, type ChannelEvent, type KernelMessage } from './events-channel.js';

function collect(withKernel = false, maxLine?: number): { ch: EventsChannel; events: ChannelEvent[]; notes: string[]; kernel: KernelMessage[] } {
  const events: ChannelEvent[] = [];
  const notes: string[] = [];
  const kernel: KernelMessage[] = [];
  const ch = new EventsChannel(
    {
      event: (e) => events.push(e),
      malformed: (n) => notes.push(n),
      ...(withKernel ? { kernel: (m: KernelMessage) => kernel.push(m) } : {}),
    },
    maxLine,
    3,
  );
  return { ch, events, notes, kernel };
}

test('lines split across chunks and several lines in one chunk both parse', () => {
  const { ch, events, notes } = collect();
  ch.write(Buffer.from('{"type":"progress","perc'));
  ch.write(Buffer.from('ent":40,"message":"Loading"}\n{"type":"result","data":{"text/plain":"42"}}\n'));
  assert.deepEqual(events, [
    { type: 'progress', percent: 40, message: 'Loading' },
    { type: 'result', data: { 'text/plain': '42' } },
  ]);
  assert.deepEqual(notes, []);
});

test('a UTF-8 character split between chunks survives', () => {
  const { ch, events } = collect();
  const bytes = Buffer.from('{"type":"progress","message":"é😀"}\n');
  for (const b of bytes) ch.write(Buffer.from([b]));
  assert.deepEqual(events, [{ type: 'progress', message: 'é😀' }]);
});

test('malformed lines become notes, never events; notes are capped with a summary', () => {
  const { ch, events, notes } = collect();
  ch.write(Buffer.from('garbage\n[1]\n{"type":"nope"}\n{"type":"progress","percent":"x"}\n{"type":"result","data":{}}\n'));
  ch.end();
  assert.equal(events.length, 0);
  assert.equal(notes.length, 4);
  assert.match(notes[0] ?? '', /not JSON: "garbage"/);
  assert.match(notes[1] ?? '', /expected a JSON object/);
  assert.match(notes[2] ?? '', /unknown type "nope"/);
  assert.match(notes[3] ?? '', /2 more malformed line/);
});

test('a last line without a newline counts at the end', () => {
  const { ch, events } = collect();
  ch.write(Buffer.from('{"type":"progress","percent":100}'));
  assert.equal(events.length, 0);
  ch.end();
  assert.deepEqual(events, [{ type: 'progress', percent: 100 }]);
});

test('an over-long line is skipped up to its newline, and the next line still parses', () => {
  const { ch, events, notes } = collect(false, 100);
  ch.write(Buffer.from(`{"type":"progress","message":"${'x'.repeat(150)}`));
  ch.write(Buffer.from(`${'y'.repeat(50)}"}\n{"type":"progress","percent":1}\n`));
  assert.deepEqual(events, [{ type: 'progress', percent: 1 }]);
  assert.match(notes[0] ?? '', /longer than 100 bytes/);
});

test('kernel messages go to the kernel hook, and are malformed without one', () => {
  const k = collect(true);
  k.ch.write(Buffer.from('{"type":"sluice.cell_done","nonce":"ab","status":"error","exit_code":1}\n'));
  k.ch.write(Buffer.from('{"type":"sluice.cell_done","nonce":"cd","status":"ok","exit_code":3,"exiting":true}\n'));
  assert.deepEqual(k.kernel, [
    { type: 'sluice.cell_done', nonce: 'ab', status: 'error', exit_code: 1, exiting: false },
    { type: 'sluice.cell_done', nonce: 'cd', status: 'ok', exit_code: 3, exiting: true },
  ]);
  const p = collect(false);
  p.ch.write(Buffer.from('{"type":"sluice.cell_done","nonce":"ab","status":"ok"}\n'));
  assert.equal(p.kernel.length, 0);
  assert.equal(p.notes.length, 1);
});

test('percent is clamped to 0..100 and result values must be strings except JSON types', () => {
  assert.deepEqual(parseChannelMessage({ type: 'progress', percent: 140 }), { type: 'progress', percent: 100 });
  assert.deepEqual(parseChannelMessage({ type: 'result', data: { 'application/json': { a: 1 } } }), { type: 'result', data: { 'application/json': { a: 1 } } });
  assert.match(String(parseChannelMessage({ type: 'result', data: { 'image/png': 5 } })), /expected a string/);
  assert.match(String(parseChannelMessage({ type: 'result', data: { 'not a mime': 'x' } })), /is not a MIME type/);
});
