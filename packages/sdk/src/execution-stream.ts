/**
 * A live execution: an async iterable of its events (one owner), with the callbacks, the fold
 * and the commands (stdin, cancel) on the side. Leaving a `for await` early (`break`, `return`,
 * a throw) or aborting `signal` cancels the execution on the server and closes the connection;
 * `finally` paths release every reader, listener and timer. The transport underneath (SSE or
 * the session's WebSocket) resumes dropped connections, so every event arrives exactly once.
 */
import { assertNever, emptyResult, foldEvent, type ExecutionEvent, type ProgressEvent, type ResultEvent } from '@sluice/protocol';
import { errorFromCode, type SluiceError } from './errors.js';
import type { ExecutionEventSource } from './internal/event-source.js';
import { LiveStream } from './internal/live-stream.js';
import { toRunResult, type RunResult } from './run-result.js';

/** Callbacks fired as the stream is consumed (by a `for await`, `result()` or `run()`), in log order. */
export interface StreamCallbacks {
  /** Every event, before the typed callbacks below. */
  onEvent?: ((event: ExecutionEvent) => void) | undefined;
  /** Text the program wrote to stdout (chunks, not lines). */
  onStdout?: ((text: string) => void) | undefined;
  /** Text the program wrote to stderr. */
  onStderr?: ((text: string) => void) | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  onResult?: ((event: ResultEvent) => void) | undefined;
  /**
   * An `error` event (the execution could not run; its `done` follows), or the failure that is
   * about to reject the stream. Not called for the caller's own abort.
   */
  onError?: ((error: SluiceError) => void) | undefined;
}

/** Options of a stream: its callbacks, an abort signal, and whether leaving early cancels the execution. */
export interface ExecutionStreamOptions extends StreamCallbacks {
  /** Aborting cancels the execution on the server and rejects the pending read with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * Leaving early (`break`, `return()`, abort) cancels the execution on the server. Default true
   * for `session.stream()`/`run()`; false for `attach()`/`executions.events()`, whose readers only watch.
   */
  cancelOnLeave?: boolean | undefined;
  /** Deadline of the cancel sent when the stream is left early, milliseconds. */
  commandTimeoutMs?: number | undefined;
}

/** A live execution's events as an async iterable with one owner; `result()` waits for the fold, `stdin()`/`cancel()` command it, leaving early cancels it. */
export class ExecutionStream extends LiveStream<ExecutionEvent, ExecutionEvent, RunResult> {
  /** The execution's id, as soon as the server names it (before the first event is read). */
  readonly executionID: Promise<string>;
  private readonly fold = emptyResult();
  private readonly exec: ExecutionEventSource;

  /** @internal Built by `session.stream()`, `session.attach()` and `executions.events()`. */
  constructor(
    source: ExecutionEventSource,
    private readonly opts: ExecutionStreamOptions = {},
  ) {
    super(source, opts, 'execution');
    this.exec = source;
    this.executionID = source.executionID;
  }

  /**
   * The fold of the whole log once `done` arrived. Consumes the stream if nobody iterates it
   * (callbacks still fire); otherwise waits for the iteration to reach `done`. Rejects if the
   * stream failed, was aborted, or was left before `done`.
   */
  result(): Promise<RunResult> {
    return this.consume();
  }

  /** Writes text to the program's stdin (it stays open until {@link closeStdin}). */
  stdin(data: string): Promise<void> {
    return this.exec.stdin(data, false);
  }

  /** Closes the program's stdin (end of file). */
  closeStdin(): Promise<void> {
    return this.exec.stdin('', true);
  }

  /** Asks the server to cancel; the stream goes on to its `done` (reason `cancelled`). */
  cancel(): Promise<void> {
    return this.source.cancel();
  }

  protected override isLast(ev: ExecutionEvent): boolean {
    return ev.type === 'done';
  }

  protected override async settle(): Promise<RunResult> {
    if (this.fold.execution_id === null) this.fold.execution_id = await this.executionID.catch(() => null);
    return toRunResult(this.fold);
  }

  protected override reportError(err: SluiceError): void {
    this.opts.onError?.(err);
  }

  /** Folds one event and fires its callbacks. */
  protected override deliver(ev: ExecutionEvent): ExecutionEvent {
    foldEvent(this.fold, ev);
    const o = this.opts;
    o.onEvent?.(ev);
    switch (ev.type) {
      case 'stdout':
        o.onStdout?.(ev.content);
        break;
      case 'stderr':
        o.onStderr?.(ev.content);
        break;
      case 'progress':
        o.onProgress?.(ev);
        break;
      case 'result':
        o.onResult?.(ev);
        break;
      case 'error':
        o.onError?.(errorFromCode(ev.code, ev.error));
        break;
      case 'start':
      case 'truncated':
      case 'gap':
      case 'done':
        break; // no callback of their own: onEvent and the fold carry them
      default:
        assertNever(ev, 'event');
    }
    return ev;
  }
}
