/**
 * Runs AG-UI events through the official client's own checks (@ag-ui/client 1.0): `enforceEvents`
 * (each event against @ag-ui/core's schema; it strips what the schema does not know) then
 * `verifyEvents` (the order rules); and the agent runs the unit tests of the mapper and the stream map.
 */
import assert from 'node:assert/strict';
import { enforceEvents, verifyEvents, type BaseEvent } from '@ag-ui/client';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { AgentEvent } from '@sluice/protocol';
import type { AGUIEvent } from './agui-events.js';

/** Resolves when AG-UI's checks accept `events` unchanged; rejects with the verifier's error. */
export async function assertAGUIValid(events: readonly AGUIEvent[]): Promise<void> {
  // Through JSON, as on the wire.
  const wire = JSON.parse(JSON.stringify(events)) as BaseEvent[];
  const seen = await lastValueFrom(from(wire).pipe(enforceEvents(), verifyEvents(), toArray()), { defaultValue: [] });
  assert.deepEqual(seen, wire, 'AG-UI’s schema changed an event (a field it does not know, or a wrong type)');
}

/** The verifier's error for `events`, or null when it accepts them. */
export async function aguiProblem(events: readonly AGUIEvent[]): Promise<string | null> {
  try {
    await assertAGUIValid(events);
    return null;
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The ids of the test run. */
export const IDS = { threadID: 'sess1', runID: 'run1' };
export const USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

/** An event without seq and ts, as a test writes it. */
export type Draft = AgentEvent extends infer E ? (E extends AgentEvent ? Omit<E, 'seq' | 'ts'> : never) : never;

/** Numbers the drafts 1..n (ts = 1000 + seq), as a log would. */
export function logOf(drafts: readonly Draft[]): AgentEvent[] {
  return drafts.map((d, i) => ({ ...d, seq: i + 1, ts: 1000 + i + 1 }) as AgentEvent);
}

/**
 * A whole run as AgentRun logs it: text, a run_code call whose args stream in pieces (the first
 * delta empty: the call's id and name), the model call's `turn_end`, then the tool runs with
 * live output, progress and a result, then the answer in turn 2.
 */
export const TOOL_RUN: readonly Draft[] = [
  { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'gpt-test' },
  { type: 'turn_start', turn: 1 },
  { type: 'text_delta', text: 'Let me ' },
  { type: 'text_delta', text: 'compute.' },
  { type: 'tool_input_delta', tool_id: 'call_1', tool_name: 'run_code', text: '' },
  { type: 'tool_input_delta', tool_id: 'call_1', tool_name: 'run_code', text: '{"code":' },
  { type: 'tool_input_delta', tool_id: 'call_1', tool_name: 'run_code', text: '"print(1)"}' },
  { type: 'turn_end', turn: 1, usage: USAGE, total_tokens: 15 },
  { type: 'tool_start', tool_id: 'call_1', tool_name: 'run_code', input: { code: 'print(1)' } },
  { type: 'tool_output_delta', tool_id: 'call_1', tool_name: 'run_code', stream: 'stdout', text: '1\n', execution_id: 'ex1' },
  { type: 'tool_progress', tool_id: 'call_1', tool_name: 'run_code', execution_id: 'ex1', percent: 50 },
  { type: 'tool_result', tool_id: 'call_1', tool_name: 'run_code', execution_id: 'ex1', data: { 'text/plain': '1' } },
  { type: 'tool_end', tool_id: 'call_1', tool_name: 'run_code', tool_output: 'stdout:\n1\n', exit_code: 0, reason: 'exited', execution_id: 'ex1' },
  { type: 'turn_start', turn: 2 },
  { type: 'text_delta', text: 'It is 1.' },
  { type: 'turn_end', turn: 2, usage: USAGE, total_tokens: 30 },
  { type: 'end', text: 'It is 1.', total_tokens: 30, usage: { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 }, turns: 2, reason: 'completed' },
];
