/**
 * Narrows decoded JSON (an SSE `data` payload or an NDJSON line) into an {@link ExecutionEvent}.
 * The client never trusts the wire: every field the union declares is checked for its type,
 * and the result is a fresh object holding only those fields.
 */
import { assertNever } from './assert-never.js';
import type { ErrorCode } from './errors.js';
import {
  DONE_REASONS,
  EVENT_TYPES,
  LANGUAGES,
  MODES,
  isEventType,
  type EventType,
  type ExecutionEvent,
  type OutputStream,
  type ProgressEvent,
  type DoneEvent,
} from './events.js';
import { FieldError, Fields } from './fields.js';
import { describeValue, type Validated } from './requests.js';

/**
 * Validates one event. Unknown extra fields are dropped rather than rejected, so a newer server
 * may add fields without breaking older clients. A failure has code `INTERNAL` (a malformed
 * event is the producer's bug, never the reader's) and a message naming the field, what was
 * expected and what arrived, e.g. `stdout.content: expected a string, got nothing`.
 */
export function parseExecutionEvent(value: unknown): Validated<ExecutionEvent> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid('event', 'a JSON object', value);
  }
  const obj = value as Record<string, unknown>;
  const type = obj['type'];
  if (!isEventType(type)) return invalid('event.type', `one of ${EVENT_TYPES.join(', ')}`, type);
  try {
    return { ok: true, value: readEvent(new Fields(obj, type)) };
  } catch (err: unknown) {
    if (err instanceof FieldError) return invalid(err.field, err.expected, err.got);
    throw err;
  }
}

const OUTPUT_STREAMS = ['stdout', 'stderr'] as const satisfies readonly OutputStream[];

function readEvent(f: Fields<EventType>): ExecutionEvent {
  const seq = f.positiveInteger('seq');
  const ts = f.number('ts');
  const type = f.type;
  switch (type) {
    case 'start':
      return {
        type,
        seq,
        ts,
        execution_id: f.string('execution_id'),
        session_id: f.string('session_id'),
        language: f.oneOf('language', LANGUAGES),
        mode: f.oneOf('mode', MODES),
      };
    case 'stdout':
    case 'stderr':
      return { type, seq, ts, content: f.string('content') };
    case 'progress': {
      const ev: ProgressEvent = { type, seq, ts };
      const message = f.optional('message', () => f.string('message'));
      if (message !== undefined) ev.message = message;
      const percent = f.optional('percent', () => f.number('percent'));
      if (percent !== undefined) ev.percent = percent;
      // `data` is free-form: any JSON value.
      if (f.has('data')) ev.data = f.raw('data');
      return ev;
    }
    case 'result':
      return { type, seq, ts, data: f.object('data') };
    case 'truncated':
      return { type, seq, ts, stream: f.oneOf('stream', OUTPUT_STREAMS), dropped_bytes: f.nonNegativeInteger('dropped_bytes') };
    case 'gap':
      return { type, seq, ts, from_seq: f.positiveInteger('from_seq'), to_seq: f.positiveInteger('to_seq') };
    case 'done': {
      const ev: DoneEvent = {
        type,
        seq,
        ts,
        exit_code: f.integerOrNull('exit_code'),
        duration: f.string('duration'),
        duration_ms: f.nonNegativeNumber('duration_ms'),
        reason: f.oneOf('reason', DONE_REASONS),
      };
      const signal = f.optional('signal', () => f.string('signal'));
      if (signal !== undefined) ev.signal = signal;
      const restarted = f.optional('kernel_restarted', () => f.boolean('kernel_restarted'));
      if (restarted !== undefined) ev.kernel_restarted = restarted;
      return ev;
    }
    case 'error':
      return { type, seq, ts, error: f.string('error'), code: f.string('code') };
    default:
      return assertNever(type, 'event type');
  }
}

function invalid(field: string, expected: string, got: unknown): { ok: false; code: ErrorCode; message: string } {
  return { ok: false, code: 'INTERNAL', message: `${field}: expected ${expected}, got ${describeValue(got)}` };
}
