/**
 * Narrows decoded JSON (an SSE `data` payload, an NDJSON line, a socket frame) into an
 * {@link AgentEvent}, checking every declared field; unknown extra fields are dropped so a newer
 * server may add some. A failure has code `INTERNAL` (a malformed event is the producer's bug).
 */
import {
  AGENT_END_REASONS,
  AGENT_EVENT_TYPES,
  isAgentEventType,
  type AgentEndReason,
  type AgentEvent,
  type AgentEventType,
  type TokenUsage,
  type ToolEndEvent,
  type ToolEndReason,
  type ToolProgressEvent,
} from './agent-events.js';
import { assertNever } from './assert-never.js';
import { DONE_REASONS } from './events.js';
import { FieldError, Fields } from './fields.js';
import { describeValue, type Validated } from './requests.js';

const OUTPUT_STREAMS = ['stdout', 'stderr'] as const;
const TOOL_END_REASONS: readonly ToolEndReason[] = [...DONE_REASONS, 'invalid'];

/** Validates one agent event (see the module comment). */
export function parseAgentEvent(value: unknown): Validated<AgentEvent> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid('event', 'a JSON object', value);
  }
  const obj = value as Record<string, unknown>;
  const type = obj['type'];
  if (!isAgentEventType(type)) return invalid('event.type', `one of ${AGENT_EVENT_TYPES.join(', ')}`, type);
  try {
    return { ok: true, value: readEvent(new Fields(obj, type)) };
  } catch (err: unknown) {
    if (err instanceof FieldError) return invalid(err.field, err.expected, err.got);
    throw err;
  }
}

function readEvent(f: Fields<AgentEventType>): AgentEvent {
  const seq = f.positiveInteger('seq');
  const ts = f.number('ts');
  const type = f.type;
  switch (type) {
    case 'agent_start':
      return { type, seq, ts, run_id: f.string('run_id'), session_id: f.string('session_id'), model: f.string('model') };
    case 'turn_start':
      return { type, seq, ts, turn: f.positiveInteger('turn') };
    case 'text_delta':
      return { type, seq, ts, text: f.string('text') };
    case 'tool_input_delta':
      return { type, seq, ts, tool_id: f.string('tool_id'), tool_name: f.string('tool_name'), text: f.string('text') };
    case 'tool_start':
      return { type, seq, ts, tool_id: f.string('tool_id'), tool_name: f.string('tool_name'), input: f.object('input') };
    case 'tool_output_delta':
      return {
        type,
        seq,
        ts,
        tool_id: f.string('tool_id'),
        tool_name: f.string('tool_name'),
        stream: f.oneOf('stream', OUTPUT_STREAMS),
        text: f.string('text'),
        execution_id: f.string('execution_id'),
      };
    case 'tool_progress': {
      const ev: ToolProgressEvent = { type, seq, ts, tool_id: f.string('tool_id'), tool_name: f.string('tool_name'), execution_id: f.string('execution_id') };
      const message = f.optional('message', () => f.string('message'));
      if (message !== undefined) ev.message = message;
      const percent = f.optional('percent', () => f.number('percent'));
      if (percent !== undefined) ev.percent = percent;
      if (f.has('data')) ev.data = f.raw('data');
      return ev;
    }
    case 'tool_result':
      return { type, seq, ts, tool_id: f.string('tool_id'), tool_name: f.string('tool_name'), execution_id: f.string('execution_id'), data: f.object('data') };
    case 'tool_end': {
      const ev: ToolEndEvent = {
        type,
        seq,
        ts,
        tool_id: f.string('tool_id'),
        tool_name: f.string('tool_name'),
        tool_output: f.string('tool_output'),
        exit_code: f.integerOrNull('exit_code'),
        reason: f.oneOf('reason', TOOL_END_REASONS),
      };
      const executionID = f.optional('execution_id', () => f.string('execution_id'));
      if (executionID !== undefined) ev.execution_id = executionID;
      return ev;
    }
    case 'turn_end':
      return { type, seq, ts, turn: f.positiveInteger('turn'), usage: usage(f, 'usage'), total_tokens: f.nonNegativeInteger('total_tokens') };
    case 'gap':
      return { type, seq, ts, from_seq: f.positiveInteger('from_seq'), to_seq: f.positiveInteger('to_seq') };
    case 'error':
      return { type, seq, ts, error: f.string('error'), code: f.string('code') };
    case 'end': {
      const total = f.nonNegativeInteger('total_tokens');
      const reason: AgentEndReason = f.oneOf('reason', AGENT_END_REASONS);
      // `usage` is an extension: an endpoint that only sends the contract's fields still parses.
      const u = f.has('usage') ? usage(f, 'usage') : { prompt_tokens: 0, completion_tokens: 0, total_tokens: total };
      return { type, seq, ts, text: f.string('text'), total_tokens: total, usage: u, turns: f.nonNegativeInteger('turns'), reason };
    }
    default:
      return assertNever(type, 'agent event type');
  }
}

function usage(f: Fields<AgentEventType>, key: string): TokenUsage {
  const obj = f.object(key);
  const sub = new Fields(obj, `${f.type}.${key}` as AgentEventType);
  return {
    prompt_tokens: sub.nonNegativeInteger('prompt_tokens'),
    completion_tokens: sub.nonNegativeInteger('completion_tokens'),
    total_tokens: sub.nonNegativeInteger('total_tokens'),
  };
}

function invalid(field: string, expected: string, got: unknown): { ok: false; code: 'INTERNAL'; message: string } {
  return { ok: false, code: 'INTERNAL', message: `${field}: expected ${expected}, got ${describeValue(got)}` };
}
