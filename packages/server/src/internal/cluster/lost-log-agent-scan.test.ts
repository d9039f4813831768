import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '@sluice/protocol';
import { foldHeld } from '../execution/fold-log.js';
import { RedisLogError } from '../redis/redis-log.js';
import { AgentEndsWhenLost } from './lost-log.js';
import { lostOnScan } from './lost-log.test-helper.js';

test("an agent run's view of a log Redis lost ends as its stream does: error, then end (reason error), not an execution's done", async () => {
  const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
  const held = [
    JSON.stringify({ type: 'agent_start', seq: 1, ts: Date.now(), run_id: 'r', session_id: 's', model: 'm' }),
    JSON.stringify({ type: 'turn_start', seq: 2, ts: Date.now(), turn: 1 }),
    JSON.stringify({ type: 'turn_end', seq: 3, ts: Date.now(), turn: 1, usage, total_tokens: 7 }),
  ];
  const seen = await foldHeld<AgentEvent, AgentEvent[]>(new AgentEndsWhenLost(lostOnScan(held, new RedisLogError('lost', 'the log is gone'))), [], () => {}, (a, ev) => void a.push(ev));
  assert.deepEqual(
    seen.map((e) => [e.type, e.seq]),
    [
      ['agent_start', 1],
      ['turn_start', 2],
      ['turn_end', 3],
      ['error', 4],
      ['end', 5],
    ],
  );
  const end = seen[4];
  assert.ok(end?.type === 'end');
  assert.equal(end.reason, 'error');
  assert.equal(end.turns, 1);
  assert.equal(end.total_tokens, 7);
  const error = seen[3];
  assert.ok(error?.type === 'error');
  assert.match(error.error, /^sandbox_lost: /);
});
