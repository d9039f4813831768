import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { McpEventStore } from './mcp-event-store.js';

const log = (data: string): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'stdout', data } });
const progress = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 't', progress: n, message: 'x'.repeat(200) } });
const response = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [] } });

/** A notification's params ({} for anything else). */
function paramsOf(m: JSONRPCMessage): { logger?: string; data?: unknown } {
  return 'method' in m && m.params !== undefined ? (m.params as { logger?: string; data?: unknown }) : {};
}

async function replay(store: McpEventStore, after: string): Promise<{ stream: string; events: [string, JSONRPCMessage][] }> {
  const events: [string, JSONRPCMessage][] = [];
  const stream = await store.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return { stream, events };
}

test('event ids are <stream>:<seq>; a resume replays what came after, the priming event never', async () => {
  const store = new McpEventStore({ maxStreamBytes: 1 << 20, maxStreams: 8 });
  const prime = await store.storeEvent('s1', {} as JSONRPCMessage);
  assert.equal(prime, 's1:1');
  const ids = [await store.storeEvent('s1', log('a')), await store.storeEvent('s1', log('b')), await store.storeEvent('s1', response(3))];
  assert.deepEqual(ids, ['s1:2', 's1:3', 's1:4']);
  assert.deepEqual(store.resumeOf('s1:2'), { kind: 'finished' });
  assert.deepEqual(store.resumeOf('s2:1'), { kind: 'unknown' });
  assert.deepEqual(store.resumeOf('garbage'), { kind: 'unknown' });
  const r = await replay(store, prime);
  assert.equal(r.stream, 's1');
  assert.deepEqual(r.events, [['s1:2', log('a')], ['s1:3', log('b')], ['s1:4', response(3)]]);
  assert.deepEqual((await replay(store, 's1:3')).events, [['s1:4', response(3)]]);
  // Caught up: nothing, and no wait.
  assert.deepEqual((await replay(store, 's1:4')).events, []);
  await assert.rejects(replay(store, 'other:1'), /no such stream/);
});

test('past its bound a stream drops progress first, then log messages; a resume is told which were lost', async () => {
  const store = new McpEventStore({ maxStreamBytes: 4096, maxStreams: 8 });
  await store.storeEvent('s', {} as JSONRPCMessage);
  for (let i = 0; i < 40; i++) {
    await store.storeEvent('s', progress(i));
    await store.storeEvent('s', log(`line ${i}\n`));
  }
  await store.storeEvent('s', response(1));
  const { events } = await replay(store, 's:1');
  const kinds = events.map(([, m]) => ('method' in m ? m.method : 'response'));
  // Progress went first (the log messages carry the same text), all but the newest; the response, newest of all, stays.
  assert.ok(kinds.filter((k) => k === 'notifications/progress').length <= 1, kinds.join(' '));
  assert.equal(kinds[kinds.length - 1], 'response');
  const gaps = events.filter(([, m]) => paramsOf(m).logger === 'sluice');
  assert.ok(gaps.length > 0, 'a gap notice');
  const first = gaps[0];
  assert.ok(first);
  assert.match(String(paramsOf(first[1]).data), /^\d+ messages? of this stream \(events 2-\d+\) were dropped/);
  // Every id increases: the client's Last-Event-ID moves past what was lost.
  const seqs = events.map(([id]) => Number(id.split(':')[1]));
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs);
  // The newest log lines are still there, in order.
  const lines = events.flatMap(([, m]) => (paramsOf(m).logger === 'stdout' ? [String(paramsOf(m).data)] : []));
  assert.equal(lines[lines.length - 1], 'line 39\n');
});

test('messages stored while a replay runs reach the resumed stream: storing waits until the replay is registered', async () => {
  const store = new McpEventStore({ maxStreamBytes: 1 << 20, maxStreams: 8 });
  await store.storeEvent('s', {} as JSONRPCMessage);
  await store.storeEvent('s', log('a'));
  let registered = false;
  const sent: string[] = [];
  const replaying = store.replayEventsAfter('s:1', {
    send: async (id) => {
      sent.push(id);
    },
  });
  // Stored during the replay: it must not resolve before the transport registered the stream.
  const late = store.storeEvent('s', log('b')).then((id) => ({ id, registered }));
  await replaying;
  // The transport registers the resumed stream in the replay's continuation.
  registered = true;
  assert.deepEqual(await late, { id: 's:3', registered: true });
  assert.deepEqual(sent, ['s:2']);
});

test('a session holds at most maxStreams logs; close releases them all', async () => {
  const store = new McpEventStore({ maxStreamBytes: 1 << 20, maxStreams: 2 });
  for (const s of ['a', 'b', 'c']) await store.storeEvent(s, log(s));
  assert.equal(store.streamCount, 2);
  assert.deepEqual(store.resumeOf('c:1'), { kind: 'open' });
  store.close();
  assert.equal(store.streamCount, 0);
  await assert.rejects(store.storeEvent('d', log('d')), /ended/);
});
