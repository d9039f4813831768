import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '@sluice/protocol';
import { EventLog } from './event-log.js';

test('an agent log sheds its relayed tool_progress first: the model\'s words and the output stay', () => {
  const log = new EventLog<AgentEvent>(64 * 1024, { progress: 'tool_progress', result: 'tool_result' });
  log.append({ type: 'agent_start', run_id: 'r', session_id: 's', model: 'm' });
  log.append({ type: 'text_delta', text: 'The words.' });
  log.append({ type: 'tool_output_delta', tool_id: 't', tool_name: 'run_code', stream: 'stdout', text: 'IMPORTANT OUTPUT\n', execution_id: 'e' });
  for (let i = 0; i < 5000; i++) log.append({ type: 'tool_progress', tool_id: 't', tool_name: 'run_code', execution_id: 'e', percent: i % 100, message: `step ${i}` });
  const held = [...log.events()];
  assert.deepEqual(
    held.slice(0, 3).map((e) => e.type),
    ['agent_start', 'text_delta', 'tool_output_delta'],
  );
  const progress = held.filter((e) => e.type === 'tool_progress');
  assert.ok(progress.length < 5000, 'progress was shed');
  assert.equal(progress.at(-1)?.type === 'tool_progress' && progress.at(-1)?.message, 'step 4999', 'the newest progress stays');
  assert.ok(log.bytes <= 64 * 1024);
});
