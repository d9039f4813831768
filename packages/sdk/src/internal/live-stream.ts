/**
 * What every live stream of the SDK shares (ExecutionStream, AgentStream): an async iterable
 * with one owner over a resumable source, reads serialised, one event read ahead so the work
 * starts before anyone iterates, `result()` resolved by the final event. Leaving a `for await`
 * early (`break`, `return`, a throw) or aborting `signal` cancels the work on the server (unless
 * `cancelOnLeave` is false) and closes the connection; `finally` paths release every reader,
 * listener and timer. A subclass says how one wire event is delivered (its fold and callbacks,
 * and what the consumer sees), which event is the last, and what the result is.
 */
import { ConnectionError, SluiceError } from '../errors.js';
import { abortError, deferred, unref } from './abort.js';

/** What a live stream reads: the wire events, each once and in order, and the cancel command. */
export interface StreamSource<W> {
  /** The next event not delivered yet, or null once the stream is over. */
  next(): Promise<W | null>;
  /** Asks the server to cancel the work. */
  cancel(): Promise<void>;
  /** Releases the connection and every timer; no effect on the work. Idempotent. */
  close(): void;
}

/** How a live stream treats its signal and an early leave. */
export interface LiveStreamOptions {
  signal?: AbortSignal | undefined;
  /** Leaving early (`break`, `return()`, abort) cancels the work on the server (default true). */
  cancelOnLeave?: boolean | undefined;
  /** Deadline of the cancel sent when the stream is left early, milliseconds (default 10 000). */
  commandTimeoutMs?: number | undefined;
}

export abstract class LiveStream<W, Out, R> implements AsyncIterable<Out> {
  private readonly completion = deferred<R>();
  private prefetched: Promise<W | null> | undefined;
  private owned = false;
  private finished = false;
  private sawLast = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: () => void;
  private readonly commandTimeoutMs: number;
  private readonly cancelOnLeave: boolean;

  constructor(
    protected readonly source: StreamSource<W>,
    opts: LiveStreamOptions,
    /** For messages: what the stream follows (`execution`, `agent run`). */
    private readonly noun: string,
  ) {
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
      // Start now, so the work begins and its id resolves before anyone iterates. One event at
      // most is read ahead; the rest waits for the consumer.
      this.prefetched = source.next();
      this.prefetched.catch(() => {});
    }
  }

  /** Delivers one wire event: folds it, fires its callbacks (which may throw), returns what the loop sees. */
  protected abstract deliver(ev: W): Out;
  /** True for the final event (`done`, `end`). */
  protected abstract isLast(ev: W): boolean;
  /** The result, once the final event was delivered. */
  protected abstract settle(): Promise<R>;
  /** Tells the `onError` callback about a failure that is about to reject the stream. */
  protected abstract reportError(err: SluiceError): void;

  /** Iterates the events, the final one last. Only one consumer: a second iterator throws. */
  [Symbol.asyncIterator](): AsyncIterator<Out> {
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
   * The result once the final event arrived. Consumes the stream if nobody iterates it
   * (callbacks still fire); otherwise waits for the iteration to reach the end. Rejects if the
   * stream failed, was aborted, or was left before its end.
   */
  protected consume(): Promise<R> {
    if (!this.owned) {
      this.claim();
      void this.drain();
    }
    return this.completion.promise;
  }

  private claim(): void {
    if (this.owned) throw new TypeError(`this stream of an ${this.noun} is already being consumed; a stream has a single reader`);
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

  private async nextEvent(): Promise<IteratorResult<Out>> {
    if (this.finished) return { done: true, value: undefined };
    const pending = this.prefetched ?? this.source.next();
    this.prefetched = undefined;
    let ev: W | null;
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
      if (!this.sawLast) {
        const err = new ConnectionError(`the stream ended before the ${this.noun} was over`);
        this.reportError(err);
        this.completion.reject(err);
      }
      return { done: true, value: undefined };
    }
    let out: Out;
    try {
      out = this.deliver(ev);
    } catch (err: unknown) {
      // A callback threw: the consumer is gone, as if it had left the loop.
      this.finish();
      await this.cancelAndClose();
      this.completion.reject(err);
      throw err;
    }
    if (this.isLast(ev)) {
      this.sawLast = true;
      this.finish();
      this.source.close();
      this.completion.resolve(await this.settle());
    }
    return { done: false, value: out };
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.finish();
    this.source.close();
    if (err instanceof SluiceError) this.reportError(err);
    this.completion.reject(err);
  }

  /** `break` / `return()`: cancel on the server unless it is over, then close. */
  private async leave(): Promise<void> {
    if (this.finished) return;
    this.finish();
    this.completion.reject(abortError(`the stream was left before the ${this.noun} was over`));
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
