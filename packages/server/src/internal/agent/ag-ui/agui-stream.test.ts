import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '@sluice/protocol';
import type { AGUIEvent } from './agui-events.js';
import { AGUIMapper } from './agui-mapper.js';
import { AGUIStream, mapAGUI } from './agui-stream.js';
import { IDS, TOOL_RUN, USAGE, aguiProblem, assertAGUIValid, logOf, type Draft } from './agui.test-helper.js';

/** What a reader of the first stream received before it dropped: everything mapped from seqs < `from`. */
function receivedBefore(events: readonly AgentEvent[], from: number): AGUIEvent[] {
  const m = new AGUIMapper(IDS);
  return events.filter((e) => e.seq < from).flatMap((e) => m.map(e));
}

/** The text of every message and the args of every tool call, by id, as a client would assemble them. */
function assembled(events: readonly AGUIEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  const add = (id: string, piece: string): void => void out.set(id, (out.get(id) ?? '') + piece);
  for (const e of events) {
    if (e.type === 'TEXT_MESSAGE_CONTENT') add(e.messageId, e.delta);
    else if (e.type === 'TOOL_CALL_ARGS') add(e.toolCallId, e.delta);
    else if (e.type === 'TOOL_CALL_RESULT') add(`${e.toolCallId}/result`, e.content);
    else if (e.type === 'CUSTOM') add(`${e.name}/${String(e.value['seq'])}`, 'x');
  }
  return out;
}

const CANCELLED_MID_ARGS: readonly Draft[] = [
  { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
  { type: 'turn_start', turn: 1 },
  { type: 'text_delta', text: 'Writing code' },
  { type: 'tool_input_delta', tool_id: 'c', tool_name: 'run_code', text: '{"code":"whi' },
  { type: 'tool_input_delta', tool_id: 'c', tool_name: 'run_code', text: 'le True: pass"}' },
  { type: 'end', text: 'Writing code', total_tokens: 3, usage: USAGE, turns: 1, reason: 'cancelled' },
];
const FAILED: readonly Draft[] = [
  { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
  { type: 'turn_start', turn: 1 },
  { type: 'text_delta', text: 'half' },
  { type: 'error', error: 'the model stream broke off', code: 'LLM_ERROR' },
  { type: 'end', text: 'half', total_tokens: 0, usage: USAGE, turns: 1, reason: 'error' },
];

test('a stream from seq 1 is the plain mapping of the log', () => {
  const events = logOf(TOOL_RUN);
  const m = new AGUIMapper(IDS);
  assert.deepEqual(mapAGUI(IDS, events), events.flatMap((e) => m.map(e)));
});

test('resuming inside an open message: RUN_STARTED, the step and the message re-opened with the same ids, then the rest', () => {
  const events = logOf(TOOL_RUN);
  // Seq 4 is the second text delta: the reader had the message open.
  const out = mapAGUI(IDS, events, 4);
  assert.deepEqual(out.slice(0, 4), [
    { type: 'RUN_STARTED', threadId: 'sess1', runId: 'run1', timestamp: 1003 },
    { type: 'STEP_STARTED', stepName: 'turn 1', timestamp: 1003 },
    { type: 'TEXT_MESSAGE_START', messageId: 'run1-turn1', role: 'assistant', timestamp: 1003 },
    { type: 'TEXT_MESSAGE_CONTENT', messageId: 'run1-turn1', delta: 'compute.', timestamp: 1004 },
  ]);
});

test('resuming inside a tool call’s args re-opens the tool call (same id, name and parent), without repeating its args', () => {
  const events = logOf(TOOL_RUN);
  const out = mapAGUI(IDS, events, 7);
  assert.deepEqual(out.slice(0, 4), [
    { type: 'RUN_STARTED', threadId: 'sess1', runId: 'run1', timestamp: 1006 },
    { type: 'STEP_STARTED', stepName: 'turn 1', timestamp: 1006 },
    { type: 'TOOL_CALL_START', toolCallId: 'call_1', toolCallName: 'run_code', parentMessageId: 'run1-turn1', timestamp: 1006 },
    { type: 'TOOL_CALL_ARGS', toolCallId: 'call_1', delta: '"print(1)"}', timestamp: 1007 },
  ]);
});

test('resuming while the tool runs re-opens nothing (the model call’s step and the call’s args are complete)', () => {
  const out = mapAGUI(IDS, logOf(TOOL_RUN), 11);
  assert.deepEqual(
    out.slice(0, 3).map((e) => e.type),
    ['RUN_STARTED', 'CUSTOM', 'CUSTOM'],
  );
});

test('resuming between the args and the model call’s end re-opens the step and the tool call', () => {
  const out = mapAGUI(IDS, logOf(TOOL_RUN), 8);
  assert.deepEqual(
    out.slice(0, 5).map((e) => e.type),
    ['RUN_STARTED', 'STEP_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_END', 'STEP_FINISHED'],
  );
});

for (const [name, drafts] of [
  ['a completed run with a tool call', TOOL_RUN],
  ['a run cancelled while the model wrote a tool call', CANCELLED_MID_ARGS],
  ['a failed run', FAILED],
] as const) {
  test(`${name}: a stream resumed at every seq passes AG-UI’s verifier alone, and with what came before loses and repeats nothing`, async () => {
    const events = logOf(drafts);
    const whole = mapAGUI(IDS, events);
    await assertAGUIValid(whole);
    for (let from = 1; from <= events.length + 1; from++) {
      const resumed = mapAGUI(IDS, events, from);
      const problem = await aguiProblem(resumed);
      assert.equal(problem, null, `resumed at ${from}: ${problem ?? ''}`);
      assert.equal(resumed[0]?.type, 'RUN_STARTED', `resumed at ${from}`);
      const terminal = resumed.filter((e) => e.type === 'RUN_FINISHED' || e.type === 'RUN_ERROR');
      assert.deepEqual(terminal, [whole.at(-1)], `resumed at ${from}: the run's end, once`);
      if (from <= events.length) {
        // Every piece of text, args, result and live output exactly once across the two streams.
        assert.deepEqual(assembled([...receivedBefore(events, from), ...resumed]), assembled(whole), `resumed at ${from}`);
      }
    }
  });
}

test('a live stream: push returns the re-opening events as soon as the prefix is read, then maps what comes', () => {
  const events = logOf(TOOL_RUN);
  const stream = new AGUIStream(IDS, 4);
  assert.deepEqual(stream.push(events[0]!), []);
  assert.deepEqual(stream.push(events[1]!), []);
  assert.deepEqual(
    stream.push(events[2]!).map((e) => e.type),
    ['RUN_STARTED', 'STEP_STARTED', 'TEXT_MESSAGE_START'],
  );
  assert.deepEqual(
    stream.push(events[3]!).map((e) => e.type),
    ['TEXT_MESSAGE_CONTENT'],
  );
  assert.equal(stream.finished, false);
});

test('resuming past a gap: the first event at or after `from` brings the re-opening first', async () => {
  const events = logOf(TOOL_RUN);
  const stream = new AGUIStream(IDS, 5);
  const out = [...stream.push(events[0]!), ...stream.push({ seq: 5, ts: 1, type: 'gap', from_seq: 2, to_seq: 5 }), ...events.slice(5).flatMap((e) => stream.push(e)), ...stream.end()];
  assert.equal(out[0]?.type, 'RUN_STARTED');
  assert.equal(stream.finished, true);
  await assertAGUIValid(out);
});

test('a reader that had the whole run gets RUN_STARTED and the run’s end again, nothing else', () => {
  const events = logOf(TOOL_RUN);
  const out = mapAGUI(IDS, events, events.length + 5);
  assert.deepEqual(
    out.map((e) => e.type),
    ['RUN_STARTED', 'RUN_FINISHED'],
  );
});
