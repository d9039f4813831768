/**
 * The result of a run: the fold of its event log (protocol's `foldEvent`, applied as the events
 * stream in), spelt in camelCase.
 *
 * How a run ended is data, not an exception: a non-zero exit, a timeout (`reason: "timeout"`,
 * `timedOut: true`), a cancel, a memory or output limit all resolve `run()` with a result that
 * says so. `run()` rejects only when the run could not be started or followed (typed errors:
 * SessionBusyError, ConnectionError…), or when the caller aborted it. `TimeoutError` is kept for
 * client-side deadlines (`timeoutMs`), which are a different thing from the program's `timeout`.
 */
import type { DoneReason, ExecutionResult, ProgressEvent } from '@sluice/protocol';

/** A `progress` event without its envelope. */
export type ProgressInfo = Omit<ProgressEvent, 'type' | 'seq' | 'ts'>;

/** Everything an execution's log said, once it is done. */
export interface RunResult {
  executionID: string;
  stdout: string;
  stderr: string;
  /** The program's exit status (128 + n when it died of signal n); null when it never ran or never reported one. */
  exitCode: number | null;
  /** Why it ended: `exited`, `signaled`, `timeout`, `cancelled`, `memory_limit`, `output_limit`, `error`, `sandbox_lost` (scale-out: the worker running it died). */
  reason: DoneReason;
  /** The signal's name when `exitCode` came from a signal (`SIGKILL`…). */
  signal?: string;
  /** `data` of every `result` event (MIME type → value), in order. */
  results: Record<string, unknown>[];
  progress: ProgressInfo[];
  durationMs: number;
  /** The same duration as the server spells it, e.g. `"0.041s"`. */
  duration: string;
  /** Output went over the output limit and its middle was dropped (`droppedBytes` says how much). */
  truncated: boolean;
  droppedBytes: { stdout: number; stderr: number };
  /** The `error` event's code and message, when the execution could not run. */
  error: { code: string; message: string } | null;
  /**
   * The stream skipped events the server's bounded log no longer held (a `gap` event): `stdout`
   * and `stderr` may then lack output too. `GET /api/executions/{id}` says exactly what was lost.
   */
  gap: boolean;
  /** How many events were skipped and their seq range (`null` when none). */
  evicted: { events: number; fromSeq: number | null; toSeq: number | null };
  /** Kernel mode: the kernel's state (variables, imports) was lost during this run. */
  kernelRestarted: boolean;
  /** `reason === "timeout"`: the execution's own `timeout` ran out and the server stopped it. */
  timedOut: boolean;
  /** `reason === "cancelled"`. */
  cancelled: boolean;
  /** Exited by itself with status 0. */
  ok: boolean;
}

/** Converts a finished fold (one that has seen `done`) into a {@link RunResult}. */
export function toRunResult(fold: ExecutionResult): RunResult {
  if (fold.reason === null) throw new TypeError('toRunResult: the log has no done event yet');
  const r: RunResult = {
    executionID: fold.execution_id ?? '',
    stdout: fold.stdout,
    stderr: fold.stderr,
    exitCode: fold.exit_code,
    reason: fold.reason,
    results: fold.results,
    progress: fold.progress,
    durationMs: fold.duration_ms ?? 0,
    duration: fold.duration ?? '0.000s',
    truncated: fold.truncated,
    droppedBytes: { ...fold.dropped_bytes },
    error: fold.error,
    gap: fold.gap,
    evicted: { events: fold.evicted.events, fromSeq: fold.evicted.from_seq, toSeq: fold.evicted.to_seq },
    kernelRestarted: fold.kernel_restarted,
    timedOut: fold.reason === 'timeout',
    cancelled: fold.reason === 'cancelled',
    ok: fold.reason === 'exited' && fold.exit_code === 0,
  };
  if (fold.signal !== null) r.signal = fold.signal;
  return r;
}

/** True when the execution ended because its `timeout` ran out (a result, not an exception). */
export function isTimeout(result: { reason: DoneReason | null }): boolean {
  return result.reason === 'timeout';
}
