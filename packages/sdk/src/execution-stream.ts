/**
 * A live execution: an async iterable of its events (one owner), with the callbacks, the fold
 * and the commands (stdin, cancel) on the side. Leaving a `for await` early (`break`, `return`,
 * a throw) or aborting `signal` cancels the execution on the server and closes the connection;
 * `finally` paths release every reader, listener and timer. The transport underneath (SSE or
 * the session's WebSocket) resumes dropped connections, so every event arrives exactly once.
 */
import { assertNever, emptyResult, foldEvent, type ExecutionEvent, type ProgressEvent, type ResultEvent } from '@sluice/protocol';
import { ConnectionError, errorFromCode, SluiceError } from './errors.js';
import { abortError, deferred, unref } from './internal/abort.js';
import type { ExecutionEventSource } from './internal/event-source.js';
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
export class ExecutionStream implements AsyncIterable<ExecutionEvent> {
  /** The execution's id, as soon as the server names it (before the first event is read). */
  readonly executionID: Promise<string>;
  private readonly fold = emptyResult();
  private readonly completion = deferred<RunResult>();
  private prefetched: Promise<ExecutionEvent | null> | undefined;
  private owned = false;
  private finished = false;
  private sawDone = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: () => void;
  private readonly commandTimeoutMs: number;
  private readonly cancelOnLeave: boolean;

  /** @internal Built by `session.stream()`, `session.attach()` and `executions.events()`. */
  constructor(
    private readonly source: ExecutionEventSource,
    private readonly opts: ExecutionStreamOptions = {},
  ) {
    this.executionID = source.executionID;
    this.signal = opts.signal;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.cancelOnLeave = opts.cancelOnLeave ?? true;
    this.onAbort = () => {
      if (this.finished) return;
      this.finish();
      this.completion.reject(this.signal?.reason ?? abortError());
      void this.cancelAndClose();
    };
    if (this.signal?.aborted) {
      this.onAbort();
    } else {
      this.signal?.addEventListener('abort', this.onAbort, { once: true });
      // Start now, so the run begins and `executionID` resolves before anyone iterates. One
      // event at most is read ahead; the rest waits for the consumer.
      this.prefetched = source.next();
      this.prefetched.catch(() => {});
    }
  }

  /** Iterates the events, `done` last. Only one consumer: a second iterator throws. */
  [Symbol.asyncIterator](): AsyncIterator<ExecutionEvent> {
    this.claim();
    return {
      next: () => this.enqueue(() => this.nextEvent()),
      return: async () => {
        await this.leave();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * The fold of the whole log once `done` arrived. Consumes the stream if nobody iterates it
   * (callbacks still fire); otherwise waits for the iteration to reach `done`. Rejects if the
   * stream failed, was aborted, or was left before `done`.
   */
  result(): Promise<RunResult> {
    if (!this.owned) {
      this.claim();
      void this.drain();
    }
    return this.completion.promise;
  }

  /** Writes text to the program's stdin (it stays open until {@link closeStdin}). */
  stdin(data: string): Promise<void> {
    return this.source.stdin(data, false);
  }

  /** Closes the program's stdin (end of file). */
  closeStdin(): Promise<void> {
    return this.source.stdin('', true);
  }

  /** Asks the server to cancel; the stream goes on to its `done` (reason `cancelled`). */
  cancel(): Promise<void> {
    return this.source.cancel();
  }

  private claim(): void {
    if (this.owned) throw new TypeError('this ExecutionStream is already being consumed; an execution stream has a single reader');
    this.owned = true;
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const r = await this.enqueue(() => this.nextEvent());
        if (r.done === true) return;
      }
    } catch {
      // `completion` carries the failure.
    }
  }

  /** Serialises reads so that calling next() twice without awaiting stays in order. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async nextEvent(): Promise<IteratorResult<ExecutionEvent>> {
    if (this.finished) return { done: true, value: undefined };
    const pending = this.prefetched ?? this.source.next();
    this.prefetched = undefined;
    let ev: ExecutionEvent | null;
    try {
      ev = await this.raceAbort(pending);
    } catch (err: unknown) {
      if (this.signal?.aborted) throw this.signal.reason;
      this.fail(err);
      throw err;
    }
    if (this.finished) {
      // Aborted or left while this read was in flight.
      if (this.signal?.aborted) throw this.signal.reason;
      return { done: true, value: undefined };
    }
    if (ev === null) {
      this.finish();
      this.source.close();
      if (!this.sawDone) {
        const err = new ConnectionError('the stream ended before the execution was done');
        this.opts.onError?.(err);
        this.completion.reject(err);
      }
      return { done: true, value: undefined };
    }
    try {
      this.deliver(ev);
    } catch (err: unknown) {
      // A callback threw: the consumer is gone, as if it had left the loop.
      this.finish();
      await this.cancelAndClose();
      this.completion.reject(err);
      throw err;
    }
    if (ev.type === 'done') {
      this.sawDone = true;
      this.finish();
      this.source.close();
      if (this.fold.execution_id === null) this.fold.execution_id = await this.executionID.catch(() => null);
      this.completion.resolve(toRunResult(this.fold));
    }
    return { done: false, value: ev };
  }

  /** Folds one event and fires its callbacks. */
  private deliver(ev: ExecutionEvent): void {
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
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.finish();
    this.source.close();
    if (err instanceof SluiceError) this.opts.onError?.(err);
    this.completion.reject(err);
  }

  /** `break` / `return()`: cancel on the server unless it is over, then close. */
  private async leave(): Promise<void> {
    if (this.finished) return;
    this.finish();
    this.completion.reject(abortError('the stream was left before the execution was done'));
    await this.cancelAndClose();
  }

  private finish(): void {
    this.finished = true;
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Sends the cancel if asked to (bounded in time, failures ignored: the caller is leaving), then closes. */
  private async cancelAndClose(): Promise<void> {
    if (!this.cancelOnLeave) {
      this.source.close();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.commandTimeoutMs);
        unref(timer);
      });
      await Promise.race([this.source.cancel().catch(() => {}), deadline]);
    } finally {
      clearTimeout(timer);
      this.source.close();
    }
  }

  private raceAbort<T>(p: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (!signal) return p;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }
}
