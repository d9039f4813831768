import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '@sluice/protocol';
import { MemoryLogStore } from './log-store.js';

test('the memory store makes EventLogs that open() finds by id and that read back what was written', async () => {
  const store = new MemoryLogStore();
  const log = await store.create('exec:a', { maxBytes: 1024 * 1024 });
  log.append({ type: 'stdout', content: 'hi' });
  log.close();
  await assert.rejects(store.create('exec:a', { maxBytes: 1024 }), /exists/);
  const reader = await store.open('exec:a');
  assert.ok(reader);
  assert.equal(reader.closed, true);
  const seen: string[] = [];
  for await (const batch of reader.follow(1)) for (const e of batch) seen.push(e.type);
  assert.deepEqual(seen, ['stdout']);
  assert.equal(await store.open('exec:b'), null);
  const run = await store.create<AgentEvent>('run:a', { maxBytes: 1024, channel: { progress: 'tool_progress', result: 'tool_result' } });
  assert.equal(run.append({ type: 'turn_start', turn: 1 }).seq, 1);
});
