/**
 * The event log of an execution (docs/events.md). Every transport (SSE, NDJSON,
 * WebSocket, buffered JSON) carries exactly these objects.
 */

/** Languages the contract names; a server may support a subset (see `GET /api/languages`). */
export const LANGUAGES = ['python', 'javascript', 'typescript', 'bash', 'r', 'java'] as const;
/** One of {@link LANGUAGES}. */
export type Language = (typeof LANGUAGES)[number];

/** `kernel`: a long-lived interpreter per session; `process`: a fresh process per run. */
export const MODES = ['kernel', 'process'] as const;
/** One of {@link MODES}. */
export type Mode = (typeof MODES)[number];

/** Why an execution ended, as reported in `done.reason` (`sandbox_lost`: scale-out only, the worker running it died). */
export const DONE_REASONS = ['exited', 'signaled', 'timeout', 'cancelled', 'memory_limit', 'output_limit', 'error', 'sandbox_lost'] as const;
/** One of {@link DONE_REASONS}. */
export type DoneReason = (typeof DONE_REASONS)[number];

/** The output stream a `truncated` event is about. */
export type OutputStream = 'stdout' | 'stderr';

interface EventBase {
  /** 1, 2, 3… within the execution, no gaps. */
  seq: number;
  /** Milliseconds since the Unix epoch. */
  ts: number;
}

/** The first event of every execution: which execution, session, language and mode. */
export interface StartEvent extends EventBase {
  type: 'start';
  execution_id: string;
  session_id: string;
  language: Language;
  mode: Mode;
}
/** Text the program wrote to stdout (a chunk, not a line). */
export interface StdoutEvent extends EventBase {
  type: 'stdout';
  content: string;
}
/** Text the program wrote to stderr (a chunk, not a line). */
export interface StderrEvent extends EventBase {
  type: 'stderr';
  content: string;
}
/** A progress report the program sent (`message`, `percent` 0–100, any JSON `data`). */
export interface ProgressEvent extends EventBase {
  type: 'progress';
  message?: string;
  percent?: number;
  data?: unknown;
}
/** A rich result the program produced: MIME type → value. */
export interface ResultEvent extends EventBase {
  type: 'result';
  /** MIME type → value (`image/png` is base64). */
  data: Record<string, unknown>;
}
/** Output of `stream` went over the output limit: `dropped_bytes` of its middle are not in the log. */
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
/** The last event of every execution: how it ended (`reason`, `exit_code`, `signal`) and how long it took. */
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
/** The execution could not run (e.g. the sandbox did not start); `done` with reason `error` follows. */
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

/** The `type` of an execution event. */
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
