/**
 * What a transport gives one execution stream: its events, new ones only, in order, whatever
 * reconnections happened underneath, plus the commands that act on the execution.
 */
import type { ExecutionEvent } from '@sluice/protocol';

export interface ExecutionEventSource {
  /** Resolves with the execution's id as soon as the server named it; rejects if it never will. */
  readonly executionID: Promise<string>;
  /**
   * The next event not delivered yet, or null once the stream is over (after `done`). Rejects
   * with a typed error when the execution cannot be followed any more (retries ran out, 404…).
   */
  next(): Promise<ExecutionEvent | null>;
  /** Asks the server to cancel the execution. */
  cancel(): Promise<void>;
  /** Writes to the execution's stdin (closing it after `data` when `eof`). */
  stdin(data: string, eof: boolean): Promise<void>;
  /** Releases the connection and every timer; no effect on the execution. Idempotent. */
  close(): void;
}

/** The source of a call whose signal was aborted before it began: it sends nothing, and every read rejects with the abort's reason. */
export function abortedSource(reason: unknown): ExecutionEventSource {
  const executionID = Promise.reject(reason);
  executionID.catch(() => {});
  return {
    executionID,
    next: () => Promise.reject(reason),
    cancel: async () => {},
    stdin: () => Promise.reject(reason),
    close: () => {},
  };
}
