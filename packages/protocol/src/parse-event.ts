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

function readEvent(f: Fields): ExecutionEvent {
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

/** Thrown by {@link Fields} on the first bad field; caught only by {@link parseExecutionEvent}. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${field}: expected ${expected}`);
  }
}

/**
 * Typed reads off the untrusted object. Each getter returns the narrowed value or throws a
 * {@link FieldError}, which keeps the variant constructors above free of `undefined` checks.
 */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    readonly type: EventType,
  ) {}

  has(key: string): boolean {
    return Object.hasOwn(this.obj, key) && this.obj[key] !== undefined;
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  /** Reads an optional field: absent → undefined, present → checked by `read`. */
  optional<T>(key: string, read: () => T): T | undefined {
    return this.has(key) ? read() : undefined;
  }

  boolean(key: string): boolean {
    const v = this.raw(key);
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  string(key: string): string {
    const v = this.raw(key);
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }

  number(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number', v);
    return v;
  }

  nonNegativeNumber(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) this.fail(key, 'a number >= 0', v);
    return v;
  }

  positiveInteger(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.fail(key, 'a positive integer', v);
    return v;
  }

  nonNegativeInteger(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, 'an integer >= 0', v);
    return v;
  }

  integerOrNull(key: string): number | null {
    const v = this.raw(key);
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, 'an integer or null', v);
    return v;
  }

  object(key: string): Record<string, unknown> {
    const v = this.raw(key);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'a JSON object', v);
    return v as Record<string, unknown>;
  }

  oneOf<const T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.raw(key);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v);
    }
    return v as T;
  }

  private fail(key: string, expected: string, got: unknown): never {
    throw new FieldError(`${this.type}.${key}`, expected, got);
  }
}

function invalid(field: string, expected: string, got: unknown): { ok: false; code: ErrorCode; message: string } {
  return { ok: false, code: 'INTERNAL', message: `${field}: expected ${expected}, got ${describeValue(got)}` };
}
