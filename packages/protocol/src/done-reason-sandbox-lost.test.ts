import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DONE_REASONS } from './events.js';
import { parseExecutionEvent } from './parse-event.js';
import { parseAgentEvent } from './parse-agent-event.js';

test('done.reason sandbox_lost (scale-out: the worker died) is part of the contract', () => {
  assert.ok((DONE_REASONS as readonly string[]).includes('sandbox_lost'));
  const done = { type: 'done', seq: 3, ts: 1, exit_code: null, duration: '1.000s', duration_ms: 1000, reason: 'sandbox_lost' };
  assert.deepEqual(parseExecutionEvent(done), { ok: true, value: done });
  // A tool_end carries the execution's reason.
  const toolEnd = { type: 'tool_end', seq: 9, ts: 1, tool_id: 't', tool_name: 'run_code', tool_output: '', exit_code: null, reason: 'sandbox_lost', execution_id: 'e' };
  assert.equal(parseAgentEvent(toolEnd).ok, true);
});
