import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentStreamEvent } from '@sluice/sdk';
import { exitCodeForAgentEnd } from './agent-exit-code.js';
import { AgentRenderer, wantsFancy, type Write } from './agent-renderer.js';

type Bare<E = AgentStreamEvent> = E extends AgentStreamEvent ? Omit<E, 'seq' | 'ts'> : never;

const usage = { promptTokens: 20, completionTokens: 10, totalTokens: 30 };

/** A turn that writes code in pieces, runs it (stdout and stderr), then answers. */
const RUN: Bare[] = [
  { type: 'agent_start', runId: 'r', sessionId: 's', model: 'm' },
  { type: 'turn_start', turn: 1 },
  { type: 'text_delta', text: 'Computing.' },
  { type: 'tool_input_delta', toolId: 't1', toolName: 'run_code', text: '{"code":"import sys\\nprint(6' },
  { type: 'tool_input_delta', toolId: 't1', toolName: 'run_code', text: '*7)\\nprint(\\"oops\\", file=sys.stderr)","language":"python"}' },
  { type: 'tool_start', toolId: 't1', toolName: 'run_code', input: { code: 'import sys\nprint(6*7)\nprint("oops", file=sys.stderr)', language: 'python' } },
  { type: 'tool_output_delta', toolId: 't1', toolName: 'run_code', stream: 'stdout', text: '4', executionId: 'e' },
  { type: 'tool_output_delta', toolId: 't1', toolName: 'run_code', stream: 'stdout', text: '2\n', executionId: 'e' },
  { type: 'tool_output_delta', toolId: 't1', toolName: 'run_code', stream: 'stderr', text: 'oops\n', executionId: 'e' },
  { type: 'tool_end', toolId: 't1', toolName: 'run_code', toolOutput: '42\noops\n', exitCode: 0, reason: 'exited', executionId: 'e' },
  { type: 'turn_end', turn: 1, usage, totalTokens: 15 },
  { type: 'turn_start', turn: 2 },
  { type: 'text_delta', text: 'It is ' },
  { type: 'text_delta', text: '42.' },
  { type: 'end', text: 'It is 42.', totalTokens: 30, usage, turns: 2, reason: 'completed' },
];

function render(events: Bare[], fancy: boolean, language?: string): { stdout: string; stderr: string } {
  const r = new AgentRenderer({ fancy, language });
  const writes: Write[] = events.flatMap((e, i) => r.render({ ...e, seq: i + 1, ts: 0 } as AgentStreamEvent));
  return {
    stdout: writes.filter((w) => w.to === 'stdout').map((w) => w.text).join(''),
    stderr: writes.filter((w) => w.to === 'stderr').map((w) => w.text).join(''),
  };
}

test('plain ASCII: the text, then the tool call framed with its code as written and its live output (the language named once known), the usage on stderr', () => {
  const { stdout, stderr } = render(RUN, false);
  assert.equal(
    stdout,
    ['Computing.', '+- run_code -', '| import sys', '| print(6*7)', '| print("oops", file=sys.stderr)', '+- output (python) -', '| 42', '| oops', '+- exit 0 -', 'It is 42.', ''].join('\n'),
  );
  assert.equal(stderr, 'sluice: completed: 2 turns, 30 tokens (20 prompt, 10 completion)\n');
  assert.doesNotMatch(stdout, /\x1b/, 'no escape codes off a terminal');
});

test('on a terminal: box characters, colour, and the default language in the header until the model names one', () => {
  const { stdout } = render(RUN, true, 'python');
  const plain = stdout.replace(/\x1b\[\d+m/g, '');
  assert.match(plain, /^Computing\.\n┌─ run_code \(python\) ─\n│ import sys\n/);
  assert.match(plain, /├─ output ─\n│ 42\n│ oops\n└─ exit 0 ─\nIt is 42\.\n$/);
  assert.match(stdout, /\x1b\[31moops/, 'stderr in red');
});

test('a header that guessed the language is corrected at the output rule when the model names another', () => {
  const { stdout } = render(
    [
      { type: 'tool_input_delta', toolId: 't', toolName: 'run_code', text: '{"code":"echo hi"' },
      { type: 'tool_input_delta', toolId: 't', toolName: 'run_code', text: ',"language":"bash"}' },
      { type: 'tool_start', toolId: 't', toolName: 'run_code', input: { code: 'echo hi', language: 'bash' } },
      { type: 'tool_output_delta', toolId: 't', toolName: 'run_code', stream: 'stdout', text: 'hi\n', executionId: 'e' },
      { type: 'tool_end', toolId: 't', toolName: 'run_code', toolOutput: 'hi\n', exitCode: 0, reason: 'exited' },
    ],
    false,
    'python',
  );
  assert.equal(stdout, ['+- run_code (python) -', '| echo hi', '+- output (bash) -', '| hi', '+- exit 0 -', ''].join('\n'));
});

test('a call whose arguments were not streamed shows its code at tool_start; a failed call says how it ended', () => {
  const { stdout } = render(
    [
      { type: 'tool_start', toolId: 't', toolName: 'run_code', input: { code: 'sleep 99', language: 'bash' } },
      { type: 'tool_end', toolId: 't', toolName: 'run_code', toolOutput: 'timed out', exitCode: 137, reason: 'timeout' },
      { type: 'tool_start', toolId: 'u', toolName: 'run_code', input: {} },
      { type: 'tool_end', toolId: 'u', toolName: 'run_code', toolOutput: 'error: missing field "code"', exitCode: null, reason: 'invalid' },
    ],
    false,
  );
  assert.equal(stdout, ['+- run_code (bash) -', '| sleep 99', '+- output -', '| timed out', '+- timeout (exit 137) -', '+- run_code -', '| error: missing field "code"', '+- invalid -', ''].join('\n'));
});

test('file tools show their path and a bounded view of their output', () => {
  const content = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`).join('\n');
  const { stdout } = render(
    [
      { type: 'tool_input_delta', toolId: 'f', toolName: 'read_file', text: '{"path":"data.csv"}' },
      { type: 'tool_start', toolId: 'f', toolName: 'read_file', input: { path: 'data.csv' } },
      { type: 'tool_end', toolId: 'f', toolName: 'read_file', toolOutput: content, exitCode: 0, reason: 'exited' },
    ],
    false,
  );
  const lines = stdout.split('\n');
  assert.equal(lines[0], '+- read_file data.csv -');
  assert.equal(lines[1], '| line 1');
  assert.equal(lines[20], '| line 20');
  assert.equal(lines[21], '| … 5 more lines');
  assert.equal(lines[22], '+- exit 0 -');
});

test('an error and a cancelled end go to stderr, the answer so far ends its line', () => {
  const { stdout, stderr } = render(
    [
      { type: 'text_delta', text: 'partial' },
      { type: 'error', error: 'the model stream failed', code: 'LLM_ERROR' },
      { type: 'end', text: 'partial', totalTokens: 3, usage: { promptTokens: 2, completionTokens: 1, totalTokens: 3 }, turns: 1, reason: 'error' },
    ],
    false,
  );
  assert.equal(stdout, 'partial\n');
  assert.equal(stderr, 'sluice: LLM_ERROR: the model stream failed\nsluice: error: 1 turn, 3 tokens (2 prompt, 1 completion)\n');
});

test('colour only on a terminal without NO_COLOR', () => {
  assert.equal(wantsFancy({ isTTY: true }, {}), true);
  assert.equal(wantsFancy({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(wantsFancy({ isTTY: true }, { NO_COLOR: '' }), true);
  assert.equal(wantsFancy({ isTTY: false }, {}), false);
});

test('exit status: 0 answered, 130 cancelled, distinct codes for max_turns and length, the error code otherwise', () => {
  assert.equal(exitCodeForAgentEnd('completed', undefined), 0);
  assert.equal(exitCodeForAgentEnd('cancelled', undefined), 130);
  assert.equal(exitCodeForAgentEnd('max_turns', undefined), 3);
  assert.equal(exitCodeForAgentEnd('length', undefined), 4);
  assert.equal(exitCodeForAgentEnd('error', 'LLM_ERROR'), 69);
  assert.equal(exitCodeForAgentEnd('error', undefined), 70);
});
