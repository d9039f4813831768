import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { EventLog } from '../execution/event-log.js';
import { LogBudget } from '../execution/log-budget.js';
import { McpEventStore, type McpStreamEvent } from './mcp-event-store.js';

const log = (data: string): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'stdout', data } });
const response = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [] } });

async function replay(store: McpEventStore, after: string): Promise<[string, JSONRPCMessage][]> {
  const events: [string, JSONRPCMessage][] = [];
  await store.replayEventsAfter(after, { send: async (id, m) => void events.push([id, m]) });
  return events;
}

function dataOf(m: JSONRPCMessage): string {
  return 'method' in m && m.params !== undefined ? String((m.params as { data?: unknown }).data) : 'id' in m ? `response ${String(m.id)}` : '?';
}

test('finished streams are dropped before a running one, least recently used first: a running call keeps every message', async () => {
  const store = new McpEventStore({ maxStreamBytes: 1 << 20, maxStreams: 4 });
  await store.storeEvent('run', {} as JSONRPCMessage);
  await store.storeEvent('run', log('line 1'));
  // Many short requests while the run goes on (tools/list…): each opens a stream and finishes it.
  for (let i = 0; i < 40; i++) {
    await store.storeEvent(`q${i}`, {} as JSONRPCMessage);
    await store.storeEvent(`q${i}`, response(i));
  }
  await store.storeEvent('run', log('line 2'));
  assert.ok(store.streamCount <= 4);
  assert.deepEqual(store.resumeOf('run:2'), { kind: 'open' });
  assert.deepEqual((await replay(store, 'run:1')).map(([id, m]) => [id, dataOf(m)]), [
    ['run:2', 'line 1'],
    ['run:3', 'line 2'],
  ]);
  // The newest finished ones are held; the oldest are remembered and told as lost.
  assert.deepEqual((await replay(store, 'q39:1')).map(([id, m]) => [id, dataOf(m)]), [['q39:2', 'response 39']]);
  assert.deepEqual(store.resumeOf('q0:1'), { kind: 'finished' });
  const lost = await replay(store, 'q0:1');
  assert.equal(lost.length, 1);
  assert.equal(lost[0]?.[0], 'q0:2');
  assert.match(dataOf(lost[0]?.[1] ?? log('')), /^1 message of this stream \(events 2-2\) were dropped/);
});

test('a running stream that had to be dropped continues its numbering: ids never repeat, a resume gets a gap notice', async () => {
  const store = new McpEventStore({ maxStreamBytes: 1 << 20, maxStreams: 2 });
  await store.storeEvent('a', {} as JSONRPCMessage);
  await store.storeEvent('a', log('a1'));
  // Two other running streams: none finished, so the least recently used (a) must go.
  await store.storeEvent('b', log('b1'));
  await store.storeEvent('c', log('c1'));
  assert.equal(store.streamCount, 2);
  assert.equal(await store.storeEvent('a', log('a2')), 'a:3');
  assert.equal(await store.storeEvent('a', response(1)), 'a:4');
  assert.deepEqual((await replay(store, 'a:1')).map(([id, m]) => [id, dataOf(m)]), [
    ['a:2', '1 message of this stream (events 2-2) were dropped from its bounded log before this resume and cannot be replayed'],
    ['a:3', 'a2'],
    ['a:4', 'response 1'],
  ]);
  // Past the gap: nothing is lost.
  assert.deepEqual((await replay(store, 'a:2')).map(([id]) => id), ['a:3', 'a:4']);
});

test("a stream's log is closed once its response is stored, so the budget counts it as finished and may forget it", async () => {
  const budget = new LogBudget(1 << 30);
  const logs: EventLog<McpStreamEvent>[] = [];
  const store = new McpEventStore({
    maxStreamBytes: 1 << 20,
    maxStreams: 8,
    track: (l, onRelease) => {
      logs.push(l);
      budget.track(l, onRelease);
    },
  });
  await store.storeEvent('s', {} as JSONRPCMessage);
  await store.storeEvent('s', log('x'));
  assert.equal(logs[0]?.closed, false);
  await store.storeEvent('s', response(1));
  assert.equal(logs[0]?.closed, true);
  assert.deepEqual(store.resumeOf('s:1'), { kind: 'finished' });
  // The budget forgetting it (as it does finished logs first) leaves its numbering: a resume is told.
  logs[0]?.release();
  assert.equal(store.streamCount, 0);
  const events = await replay(store, 's:1');
  assert.deepEqual(events.map(([id]) => id), ['s:3']);
  assert.match(dataOf(events[0]?.[1] ?? log('')), /^2 messages of this stream \(events 2-3\) were dropped/);
});
