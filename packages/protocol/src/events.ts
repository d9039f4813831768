/**
 * The event log of an execution (docs/events.md). Every transport (SSE, NDJSON,
 * WebSocket, buffered JSON) carries exactly these objects.
 */

/** Languages the contract names; a server may support a subset (see `GET /api/languages`). */
export const LANGUAGES = ['python', 'javascript', 'typescript', 'bash', 'r', 'java'] as const;
export type Language = (typeof LANGUAGES)[number];

/** `kernel`: a long-lived interpreter per session; `process`: a fresh process per run. */
export const MODES = ['kernel', 'process'] as const;
export type Mode = (typeof MODES)[number];

/** Why an execution ended, as reported in `done.reason`. */
export const DONE_REASONS = ['exited', 'signaled', 'timeout', 'cancelled', 'memory_limit', 'output_limit', 'error'] as const;
export type DoneReason = (typeof DONE_REASONS)[number];

export type OutputStream = 'stdout' | 'stderr';

interface EventBase {
  /** 1, 2, 3… within the execution, no gaps. */
  seq: number;
  /** Milliseconds since the Unix epoch. */
  ts: number;
}

export interface StartEvent extends EventBase {
  type: 'start';
  execution_id: string;
  session_id: string;
  language: Language;
  mode: Mode;
}
export interface StdoutEvent extends EventBase {
  type: 'stdout';
  content: string;
}
export interface StderrEvent extends EventBase {
  type: 'stderr';
  content: string;
}
export interface ProgressEvent extends EventBase {
  type: 'progress';
  message?: string;
  percent?: number;
  data?: unknown;
}
export interface ResultEvent extends EventBase {
  type: 'result';
  /** MIME type → value (`image/png` is base64). */
  data: Record<string, unknown>;
}
export interface TruncatedEvent extends EventBase {
  type: 'truncated';
  stream: OutputStream;
  dropped_bytes: number;
}
/** Sent to one reader whose requested range the bounded log no longer holds; `seq` equals `to_seq`. */
export interface GapEvent extends EventBase {
  type: 'gap';
  from_seq: number;
  to_seq: number;
}
export interface DoneEvent extends EventBase {
  type: 'done';
  exit_code: number | null;
  /** Seconds with millisecond precision, e.g. `"5.123s"`. */
  duration: string;
  duration_ms: number;
  reason: DoneReason;
  signal?: string;
  /** Kernel mode: the kernel's state was lost during this execution (it died, or did not stop on interrupt and was restarted). */
  kernel_restarted?: boolean;
}
export interface ErrorEvent extends EventBase {
  type: 'error';
  error: string;
  code: string;
}

/** One entry of an execution's event log. */
export type ExecutionEvent =
  | StartEvent
  | StdoutEvent
  | StderrEvent
  | ProgressEvent
  | ResultEvent
  | TruncatedEvent
  | GapEvent
  | DoneEvent
  | ErrorEvent;

export type EventType = ExecutionEvent['type'];

/** Every event type, in no particular order; useful for validating decoded input. */
export const EVENT_TYPES = [
  'start',
  'stdout',
  'stderr',
  'progress',
  'result',
  'truncated',
  'gap',
  'done',
  'error',
] as const satisfies readonly EventType[];

/** Formats a duration the way `done.duration` spells it: seconds with three decimals. */
export function formatDuration(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(3)}s`;
}

/** True for the type names of this union (narrowing untrusted input). */
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}
