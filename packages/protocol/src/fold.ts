/** Folds an event log into the buffered-JSON answer of a run (docs/streaming.md, docs/events.md). */
import { assertNever } from './assert-never.js';
import type { DoneReason, EventType, ExecutionEvent, ProgressEvent } from './events.js';

/**
 * What the bounded log no longer held when the fold was made (an extension of the contract's fold, docs/events.md).
 * A server's fold knows it exactly; a client folding a stream with `gap` events learns only the
 * count and the seq range (`types` and the byte counts stay empty).
 */
export interface EvictedEvents {
  /** Events dropped from the log. */
  events: number;
  /** Lowest and highest seq dropped; null when nothing was. */
  from_seq: number | null;
  to_seq: number | null;
  /** Dropped events per type (types that lost none are absent). */
  types: Partial<Record<EventType, number>>;
  /** UTF-8 bytes of output the dropped stdout / stderr events held (also in `dropped_bytes`). */
  stdout_bytes: number;
  stderr_bytes: number;
}

/** The buffered answer: everything the log said, in one object. */
export interface ExecutionResult {
  execution_id: string | null;
  stdout: string;
  stderr: string;
  /** `null` until `done` arrived (or when the sandbox could not report one). */
  exit_code: number | null;
  duration: string | null;
  duration_ms: number | null;
  reason: DoneReason | null;
  signal: string | null;
  /** Kernel mode: the kernel's state was lost during this execution. */
  kernel_restarted: boolean;
  /** `data` of every `result` event, in order. */
  results: Record<string, unknown>[];
  progress: Omit<ProgressEvent, 'type' | 'seq' | 'ts'>[];
  /** True when `stdout` / `stderr` lack output: its middle went over the output limit, or the bounded log dropped some. */
  truncated: boolean;
  /** Output bytes missing from `stdout` / `stderr`, per stream (zero when nothing is). */
  dropped_bytes: { stdout: number; stderr: number };
  /** The `error` event's message and code, if the execution failed to run. */
  error: { code: string; message: string } | null;
  /** True when events are missing: the bounded log no longer held them. */
  gap: boolean;
  /** Which events are missing, and how much output went with them. */
  evicted: EvictedEvents;
}

/** A fold with nothing in it yet. */
export function emptyResult(): ExecutionResult {
  return {
    execution_id: null,
    stdout: '',
    stderr: '',
    exit_code: null,
    duration: null,
    duration_ms: null,
    reason: null,
    signal: null,
    kernel_restarted: false,
    results: [],
    progress: [],
    truncated: false,
    dropped_bytes: { stdout: 0, stderr: 0 },
    error: null,
    gap: false,
    evicted: { events: 0, from_seq: null, to_seq: null, types: {}, stdout_bytes: 0, stderr_bytes: 0 },
  };
}

/** Applies one event to a fold in place (so a client can fold a live stream incrementally). */
export function foldEvent(acc: ExecutionResult, ev: ExecutionEvent): ExecutionResult {
  switch (ev.type) {
    case 'start':
      acc.execution_id = ev.execution_id;
      break;
    case 'stdout':
      acc.stdout += ev.content;
      break;
    case 'stderr':
      acc.stderr += ev.content;
      break;
    case 'progress': {
      const { type: _t, seq: _s, ts: _ts, ...rest } = ev;
      acc.progress.push(rest);
      break;
    }
    case 'result':
      acc.results.push(ev.data);
      break;
    case 'truncated':
      acc.truncated = true;
      acc.dropped_bytes[ev.stream] += ev.dropped_bytes;
      break;
    case 'gap':
      addEvicted(acc, { events: ev.to_seq - ev.from_seq + 1, from_seq: ev.from_seq, to_seq: ev.to_seq, types: {}, stdout_bytes: 0, stderr_bytes: 0 });
      break;
    case 'done':
      acc.exit_code = ev.exit_code;
      acc.duration = ev.duration;
      acc.duration_ms = ev.duration_ms;
      acc.reason = ev.reason;
      acc.signal = ev.signal ?? null;
      acc.kernel_restarted = ev.kernel_restarted === true;
      break;
    case 'error':
      acc.error = { code: ev.code, message: ev.error };
      break;
    default:
      assertNever(ev, 'event');
  }
  return acc;
}

/** Records events that are missing from a fold (a `gap`, or what a server's log dropped). */
export function addEvicted(acc: ExecutionResult, lost: EvictedEvents): ExecutionResult {
  if (lost.events <= 0) return acc;
  const e = acc.evicted;
  acc.gap = true;
  e.events += lost.events;
  if (lost.from_seq !== null) e.from_seq = e.from_seq === null ? lost.from_seq : Math.min(e.from_seq, lost.from_seq);
  if (lost.to_seq !== null) e.to_seq = e.to_seq === null ? lost.to_seq : Math.max(e.to_seq, lost.to_seq);
  for (const [type, n] of Object.entries(lost.types) as [EventType, number][]) e.types[type] = (e.types[type] ?? 0) + n;
  e.stdout_bytes += lost.stdout_bytes;
  e.stderr_bytes += lost.stderr_bytes;
  acc.dropped_bytes.stdout += lost.stdout_bytes;
  acc.dropped_bytes.stderr += lost.stderr_bytes;
  if (lost.stdout_bytes + lost.stderr_bytes > 0) acc.truncated = true;
  return acc;
}

/** Folds a whole log. */
export function foldEvents(events: Iterable<ExecutionEvent>): ExecutionResult {
  const acc = emptyResult();
  for (const ev of events) foldEvent(acc, ev);
  return acc;
}
