/**
 * A live agent run: an async iterable of its events (one owner) in the SDK's spelling
 * (agent-events.ts), shaped like A3S Code's `session.stream()`, with the fold and `cancel()` on
 * the side. Leaving a `for await` early (`break`, `return`, a throw) or aborting `signal`
 * cancels the run on the server (unless `cancelOnLeave: false`); a dropped connection is resumed
 * from the last seq, so every event arrives exactly once. The stream is not a thenable:
 * `await session.agent.stream(…)`, as A3S code writes it, yields the stream itself.
 */
import { emptyAgentResult, foldAgentEvent, type AgentEvent } from '@sluice/protocol';
import { toAgentStreamEvent, type AgentStreamEvent } from './agent-events.js';
import { toAgentResult, type AgentResult } from './agent-result.js';
import { errorFromCode, type SluiceError } from './errors.js';
import { LiveStream, type StreamSource } from './internal/live-stream.js';

/** Callbacks fired as the stream is consumed (by a `for await`, `result()` or `run()`), in log order. */
export interface AgentStreamCallbacks {
  /** Every event, before the typed callbacks below. */
  onEvent?: ((event: AgentStreamEvent) => void) | undefined;
  /** Text the model streamed. */
  onText?: ((text: string) => void) | undefined;
  /** An `error` event (the run failed; its `end` follows), or the failure about to reject the stream. Not called for the caller's own abort. */
  onError?: ((error: SluiceError) => void) | undefined;
}

/** Options of an agent stream: callbacks, an abort signal, and whether leaving early cancels the run. */
export interface AgentStreamOptions extends AgentStreamCallbacks {
  /** Aborting cancels the run on the server and rejects the pending read with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Leaving early (`break`, `return()`, abort) cancels the run on the server (default true; false for `attach()`). */
  cancelOnLeave?: boolean | undefined;
  /** Deadline of the cancel sent when the stream is left early, milliseconds. */
  commandTimeoutMs?: number | undefined;
}

/** What an agent stream reads: its events and cancel, and the run's id once the server names it. */
export interface AgentEventSource extends StreamSource<AgentEvent> {
  readonly logID: Promise<string>;
}

/** A live agent run's events as an async iterable with one owner; `result()` waits for the fold, `cancel()` stops the run, leaving early cancels it. */
export class AgentStream extends LiveStream<AgentEvent, AgentStreamEvent, AgentResult> {
  /** The run's id, as soon as the server names it (before the first event is read). */
  readonly runId: Promise<string>;
  private readonly fold = emptyAgentResult();

  /** @internal Built by `session.agent.stream()` and `session.agent.attach()`. */
  constructor(
    source: AgentEventSource,
    private readonly opts: AgentStreamOptions = {},
  ) {
    super(source, opts, 'agent run');
    this.runId = source.logID;
  }

  /**
   * The fold of the whole log once `end` arrived (a cancelled or failed run is a result that
   * says so). Consumes the stream if nobody iterates it (callbacks still fire); otherwise waits
   * for the iteration to reach `end`. Rejects if the stream failed, was aborted, or was left early.
   */
  result(): Promise<AgentResult> {
    return this.consume();
  }

  /** The answer so far: the text of the current turn, and after `end` the final answer. */
  get finalText(): string {
    return this.fold.text;
  }

  /**
   * Asks the server to cancel the run (the model call and any running tool); the stream goes on
   * to its `end` (reason `cancelled`, with the text and tokens so far). Idempotent.
   */
  cancel(): Promise<void> {
    return this.source.cancel();
  }

  protected override isLast(ev: AgentEvent): boolean {
    return ev.type === 'end';
  }

  protected override async settle(): Promise<AgentResult> {
    return toAgentResult(this.fold, await this.runId.catch(() => ''));
  }

  protected override reportError(err: SluiceError): void {
    this.opts.onError?.(err);
  }

  protected override deliver(ev: AgentEvent): AgentStreamEvent {
    foldAgentEvent(this.fold, ev);
    const out = toAgentStreamEvent(ev);
    this.opts.onEvent?.(out);
    if (ev.type === 'text_delta') this.opts.onText?.(ev.text);
    else if (ev.type === 'error') this.opts.onError?.(errorFromCode(ev.code, ev.error));
    return out;
  }
}
