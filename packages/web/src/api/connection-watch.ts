/**
 * Watches the SDK's stream connections, through the `fetch` the page gives it, to show what
 * the SDK does underneath: a stream body that breaks off (not by the SDK's own abort) is a
 * dropped connection, and a request that reopens a log (`GET …/events` with `Last-Event-ID`,
 * or a start retried with the same `Idempotency-Key`) is the SDK resuming it. The SDK does the
 * resuming; this only reports it. Bodies stay pull-driven (no buffering here).
 */
import type { FetchFunction } from '@sluice/sdk';

/** The streams' connection as the page shows it. */
export type LinkState =
  | { kind: 'idle' }
  | { kind: 'dropped' }
  | { kind: 'reconnecting'; attempt: number }
  | { kind: 'resumed'; afterSeq: number | null };

/** A fetch for the SDK that reports {@link LinkState} changes to `onChange`. */
export class ConnectionWatch {
  readonly fetch: FetchFunction;
  private attempts = 0;
  private readonly startKeys = new Set<string>();

  constructor(
    private readonly onChange: (state: LinkState) => void,
    inner: FetchFunction = globalThis.fetch.bind(globalThis),
  ) {
    this.fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      if (headers.get('accept') !== 'text/event-stream') return inner(input, init);
      const resume = this.isResume(headers);
      if (resume) this.onChange({ kind: 'reconnecting', attempt: ++this.attempts });
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (err: unknown) {
        // A failed resume leaves the state at `reconnecting`: the SDK tries again after a backoff.
        if (!resume && !(init?.signal?.aborted ?? false)) this.onChange({ kind: 'dropped' });
        throw err;
      }
      if (resume && res.ok) {
        this.attempts = 0;
        const last = headers.get('last-event-id');
        this.onChange({ kind: 'resumed', afterSeq: last === null ? null : Number(last) });
      }
      return this.watchBody(res, init?.signal ?? undefined);
    };
  }

  private isResume(headers: Headers): boolean {
    if (headers.has('last-event-id')) return true;
    const key = headers.get('idempotency-key');
    if (key === null) return false;
    if (this.startKeys.has(key)) return true;
    // Bounded: only the recent starts matter for telling a retry from a first try.
    if (this.startKeys.size >= 256) this.startKeys.clear();
    this.startKeys.add(key);
    return false;
  }

  /** The same answer, its body passed through chunk by chunk, reporting a break that was not ours. */
  private watchBody(res: Response, signal: AbortSignal | undefined): Response {
    if (res.body === null || !res.ok || res.status === 204) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const r = await reader.read();
            if (r.done) controller.close();
            else controller.enqueue(r.value);
          } catch (err: unknown) {
            if (!(signal?.aborted ?? false)) this.onChange({ kind: 'dropped' });
            controller.error(err);
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }
}
