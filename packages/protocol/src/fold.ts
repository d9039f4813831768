/** Folds an event log into the buffered-JSON answer of a run (DESIGN.md "Buffered JSON"). */
import { assertNever } from './assert-never.js';
import type { DoneReason, ExecutionEvent, ProgressEvent } from './events.js';

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
  /** True when output went over the limit and its middle was dropped. */
  truncated: boolean;
  /** Bytes dropped per stream (zero when nothing was). */
  dropped_bytes: { stdout: number; stderr: number };
  /** The `error` event's message and code, if the execution failed to run. */
  error: { code: string; message: string } | null;
  /** True when the reader skipped events the bounded log no longer held. */
  gap: boolean;
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
      acc.gap = true;
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

/** Folds a whole log. */
export function foldEvents(events: Iterable<ExecutionEvent>): ExecutionResult {
  const acc = emptyResult();
  for (const ev of events) foldEvent(acc, ev);
  return acc;
}
