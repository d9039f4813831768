import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { EventsChannel, parseChannelMessage, type ChannelEvent } from './events-channel.js';

function collect(maxLine?: number, opts: { sliceBytes?: number; maxBacklogBytes?: number } = {}) {
  const events: ChannelEvent[] = [];
  const notes: string[] = [];
  const acks: number[] = [];
  const log: string[] = [];
  const ch = new EventsChannel(
    {
      event: (e) => {
        events.push(e);
        log.push(`event ${e.type}`);
      },
      malformed: (n) => notes.push(n),
      ack: (n) => {
        acks.push(n);
        log.push(`ack ${n}`);
      },
    },
    maxLine,
    3,
    opts,
  );
  return { ch, events, notes, acks, log };
}

test('lines split across chunks and several lines in one chunk both parse', () => {
  const { ch, events, notes } = collect();
  ch.write(Buffer.from('{"type":"progress","perc'));
  ch.write(Buffer.from('ent":40,"message":"Loading"}\n{"type":"result","data":{"text/plain":"42"}}\n'));
  assert.deepEqual(events, [], 'lines wait for the check phase, after the output read in the same poll');
  ch.flush();
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
  ch.flush();
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
  const { ch, events, notes, acks } = collect(100);
  ch.write(Buffer.from(`{"type":"progress","message":"${'x'.repeat(150)}`));
  ch.write(Buffer.from(`${'y'.repeat(50)}"}\n{"type":"progress","percent":1}\n`));
  ch.flush();
  assert.deepEqual(acks, [1], 'a helper waiting on a skipped line is answered');
  assert.deepEqual(events, [{ type: 'progress', percent: 1 }]);
  assert.match(notes[0] ?? '', /longer than 100 bytes/);
});

test('kernel messages are not events: a sluice.* line on the user channel is malformed', () => {
  const { ch, events, notes } = collect();
  ch.write(Buffer.from('{"type":"sluice.cell_done","nonce":"ab","status":"ok","exit_code":0}\n'));
  ch.flush();
  assert.equal(events.length, 0);
  assert.match(notes[0] ?? '', /unknown type "sluice.cell_done"/);
});

test('sync lines are acknowledged after their event is placed, once per turn; plain lines are not', async () => {
  const { ch, events, acks, log } = collect();
  ch.write(Buffer.from('{"type":"progress","percent":1,"sync":true}\n{"type":"progress","percent":2}\n{"type":"sync","sync":true}\n'));
  assert.deepEqual(acks, []);
  await turn();
  await turn();
  assert.deepEqual(events, [{ type: 'progress', percent: 1 }, { type: 'progress', percent: 2 }], 'sync is not part of the event; a fence is no event');
  assert.deepEqual(acks, [2]);
  assert.deepEqual(log, ['event progress', 'event progress', 'ack 2']);
  ch.write(Buffer.from('{"type":"progress","sync":1}\n'));
  ch.flush();
  assert.deepEqual(acks, [2], 'only sync: true asks for an answer');
});

test('a flood is handled a slice per turn, and the source is paused past the backlog bound until it drains', async () => {
  let paused = 0;
  let resumed = 0;
  const { ch, events } = collect(undefined, { sliceBytes: 1000, maxBacklogBytes: 5000 });
  ch.attach({ pause: () => paused++, resume: () => resumed++ });
  const line = '{"type":"progress","percent":5}\n';
  ch.write(Buffer.from(line.repeat(400)));
  assert.equal(paused, 1);
  await turn();
  const first = events.length;
  assert.ok(first > 0 && first <= Math.ceil(1000 / line.length), `one slice per turn, got ${first}`);
  const deadline = Date.now() + 5000;
  while (events.length < 400 && Date.now() < deadline) await turn();
  assert.equal(events.length, 400);
  assert.equal(resumed, 1);
});

test('end() handles every queued line at once, and a last line without a newline', () => {
  const { ch, events } = collect(undefined, { sliceBytes: 10 });
  ch.write(Buffer.from('{"type":"progress","percent":1}\n'.repeat(50) + '{"type":"progress","percent":2}'));
  ch.end();
  assert.equal(events.length, 51);
});

test('percent is clamped to 0..100 and result values must be strings except JSON types', () => {
  assert.deepEqual(parseChannelMessage({ type: 'progress', percent: 140 }), { type: 'progress', percent: 100 });
  assert.deepEqual(parseChannelMessage({ type: 'result', data: { 'application/json': { a: 1 } } }), { type: 'result', data: { 'application/json': { a: 1 } } });
  assert.match(String(parseChannelMessage({ type: 'result', data: { 'image/png': 5 } })), /expected a string/);
  assert.match(String(parseChannelMessage({ type: 'result', data: { 'not a mime': 'x' } })), /is not a MIME type/);
});
