/** Small promise and signal helpers that work the same in Node and browsers. */

/** A promise with its resolve and reject at hand. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  /** True once resolved or rejected. */
  readonly settled: boolean;
}

/** A promise to settle from outside. Its rejection is marked handled: nobody has to await it. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (r: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return {
    promise,
    resolve(v) {
      settled = true;
      resolve(v);
    },
    reject(r) {
      settled = true;
      reject(r);
    },
    get settled() {
      return settled;
    },
  };
}

/**
 * Waits `ms`, or rejects with `signal.reason` as soon as it aborts. The timer keeps Node alive
 * on purpose: a backoff between reconnections may be the only thing a program is waiting on.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Lets Node exit while a timer is pending (browsers' timers are numbers and need nothing). */
export function unref(timer: unknown): void {
  if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
}

/**
 * A signal that aborts when any of `signals` does, and a function to detach from them (call it
 * when done, or the long-lived ones keep a listener per request).
 */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    const onAbort = (): void => ac.abort(s.reason);
    s.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => s.removeEventListener('abort', onAbort));
  }
  return {
    signal: ac.signal,
    dispose: () => {
      for (const c of cleanups) c();
      cleanups.length = 0;
    },
  };
}

/** An `AbortError` DOMException, as `fetch` rejects with when aborted without a reason. */
export function abortError(message = 'This operation was aborted'): Error {
  return new DOMException(message, 'AbortError');
}
