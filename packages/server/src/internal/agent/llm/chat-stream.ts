/**
 * A streaming client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
 * Ollama, llama.cpp, LM Studio, OpenRouter…), on `fetch` and protocol's SSE decoder.
 *
 * Failures are retried only while nothing has been yielded, so a consumer never sees a delta
 * twice: 429, 5xx, network errors and stalls are retried with backoff (honouring
 * `Retry-After`); after the first delta any failure is an `LLM_ERROR`, and a call that never
 * delivered one fails with `LLM_UNAVAILABLE`. The API key goes only into the `Authorization`
 * header of the request, and is redacted from every error message.
 */
import { SSEDecoder, readChunks } from '@sluice/protocol';
import { abortableSleep } from './abortable-sleep.js';
import type { ChatDelta } from './chat-delta.js';
import type { ChatMessage, ChatTool } from './chat-request.js';
import { LLMError } from './llm-error.js';
import { parseChatChunk } from './parse-chat-chunk.js';
import { redactSecret } from './redact-secret.js';
import { backoffDelayMs, parseRetryAfterMs, retryPolicy, type RetryOptions, type RetryPolicy } from './retry-delay.js';

/** What one chat completion needs. */
export interface StreamChatOptions {
  /** The API root, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …` when set and non-empty (local servers need none). */
  apiKey?: string | undefined;
  model: string;
  messages: readonly ChatMessage[];
  /** Function tools; omitted from the request when empty (some servers reject `tools: []`). */
  tools?: readonly ChatTool[];
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** A response that sends no byte for this long fails as stalled (default {@link DEFAULT_IDLE_TIMEOUT_MS}); also bounds the wait for headers. */
  idleTimeoutMs?: number;
  retry?: RetryOptions;
}

/** Default stall bound: generous, as reasoning models may think for a while before their first byte. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;

/** Longest SSE line accepted from the endpoint: one chunk is a few hundred bytes, so this only guards memory. */
const MAX_LINE_BYTES = 8 * 1024 * 1024;
/** How much of an error response's body goes into the error message. */
const MAX_ERROR_BODY_CHARS = 1000;

/**
 * Streams one chat completion as {@link ChatDelta}s, ending after the endpoint's `[DONE]`.
 * Aborting `signal` cancels the request (and any retry wait) and rejects with `signal.reason`;
 * `break`ing out of the loop cancels the response body.
 *
 * @throws LLMError `LLM_UNAVAILABLE` when no delta could be delivered, `LLM_ERROR` when the stream failed after one.
 */
export async function* streamChat(options: StreamChatOptions, signal?: AbortSignal): AsyncGenerator<ChatDelta, void, undefined> {
  const secret = options.apiKey;
  const request = buildRequest(options);
  const policy = retryPolicy(options.retry);
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 1) {
    throw new RangeError(`idleTimeoutMs must be a positive integer of milliseconds, got ${String(options.idleTimeoutMs)}`);
  }
  const doFetch = options.fetch ?? globalThis.fetch;
  let delivered = false;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    // One controller per attempt: the caller's abort and the stall timer both end it.
    const attemptAbort = new AbortController();
    const onAbort = (): void => attemptAbort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const idle = new IdleTimer(idleTimeoutMs, () => attemptAbort.abort(new StallError(idleTimeoutMs)));
    let failure: Failure;
    try {
      idle.arm();
      const response = await doFetch(request.url, { ...request.init, signal: attemptAbort.signal });
      if (!response.ok || response.body === null) {
        throw await httpFailure(response, attemptAbort.signal, idle, secret);
      }
      const decoder = new SSEDecoder({ maxLineBytes: MAX_LINE_BYTES });
      let finished = false;
      for await (const bytes of readChunks(response.body, attemptAbort.signal)) {
        idle.arm();
        for (const message of decoder.push(bytes)) {
          if (message.data === '[DONE]') return;
          const deltas = decodeChunk(message.data, secret);
          if (deltas.length === 0) continue;
          // The consumer sets the pace: time spent in its hands is not the endpoint stalling.
          idle.disarm();
          for (const delta of deltas) {
            if (delta.type === 'finish') finished = true;
            delivered = true;
            yield delta;
          }
          idle.arm();
        }
      }
      // Some servers close without `[DONE]`; after a finish_reason the completion is whole.
      if (finished) return;
      throw new Failure('the model endpoint closed the stream before it finished (no finish_reason, no [DONE])', true);
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      failure = toFailure(err, secret);
    } finally {
      idle.disarm();
      signal?.removeEventListener('abort', onAbort);
    }
    const status = failure.status === undefined ? {} : { status: failure.status };
    if (delivered) throw new LLMError('LLM_ERROR', `the model stream failed: ${failure.message}`, status);
    const delay = failure.retryable ? retryDelay(failure, attempt, policy) : undefined;
    if (delay === undefined) {
      const tries = attempt === 1 ? '' : ` (after ${attempt} attempts)`;
      throw new LLMError('LLM_UNAVAILABLE', `the model endpoint failed: ${failure.message}${tries}`, status);
    }
    await abortableSleep(delay, signal);
  }
}

interface BuiltRequest {
  url: string;
  init: { method: 'POST'; headers: Record<string, string>; body: string };
}

function buildRequest(options: StreamChatOptions): BuiltRequest {
  let base: URL;
  try {
    base = new URL(options.baseURL);
  } catch {
    throw new LLMError('LLM_UNAVAILABLE', `the model endpoint is not configured: baseURL must be an http(s) URL, got ${JSON.stringify(options.baseURL)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new LLMError('LLM_UNAVAILABLE', `the model endpoint is not configured: baseURL must be an http(s) URL, got protocol ${base.protocol}`);
  }
  if (options.model.length === 0) throw new LLMError('LLM_UNAVAILABLE', 'the model endpoint is not configured: model is empty');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (options.apiKey !== undefined && options.apiKey.length > 0) headers.authorization = `Bearer ${options.apiKey}`;
  const body: Record<string, unknown> = {
    model: options.model,
    messages: options.messages,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (options.tools !== undefined && options.tools.length > 0) body.tools = options.tools;
  return {
    url: `${options.baseURL.replace(/\/+$/, '')}/chat/completions`,
    init: { method: 'POST', headers, body: JSON.stringify(body) },
  };
}

/** One SSE `data` payload → its deltas; a bad or error chunk is a non-retryable failure. */
function decodeChunk(data: string, secret: string | undefined): ChatDelta[] {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    throw new Failure(`the model endpoint sent a chunk that is not JSON: ${excerpt(data, secret)}`, false);
  }
  const parsed = parseChatChunk(json);
  if (parsed.ok) return parsed.deltas;
  const what = parsed.kind === 'upstream_error' ? 'the model endpoint reported an error' : 'the model endpoint sent a malformed chunk';
  throw new Failure(`${what}: ${redactSecret(parsed.message, secret)}`, false);
}

/** A non-2xx answer (or one without a body) as a failure, with its status and the start of its body. */
async function httpFailure(response: Response, signal: AbortSignal, idle: IdleTimer, secret: string | undefined): Promise<Failure> {
  const status = response.status;
  const retryable = status === 429 || status >= 500 || response.body === null;
  let text = '';
  if (response.body !== null) {
    // Read only the start of the body, under the stall timer: an error page can be huge or hang.
    const decoder = new TextDecoder();
    try {
      for await (const bytes of readChunks(response.body, signal)) {
        idle.arm();
        text += typeof bytes === 'string' ? bytes : decoder.decode(bytes, { stream: true });
        if (text.length >= MAX_ERROR_BODY_CHARS) break;
      }
    } catch (err) {
      if (signal.aborted && signal.reason instanceof StallError) throw signal.reason;
      if (signal.aborted) throw err;
      // A body that fails to arrive still leaves the status to report.
    }
  }
  const detail = errorDetail(text, secret);
  const label = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const retryAfterMs = parseRetryAfterMs(response.headers);
  return new Failure(detail.length > 0 ? `${label}: ${detail}` : label, retryable, status, retryAfterMs);
}

/** The `error.message` of a JSON error body (OpenAI's shape), else the start of the text. */
function errorDetail(text: string, secret: string | undefined): string {
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json === 'object' && json !== null && 'error' in json) {
      const error: unknown = json.error;
      if (typeof error === 'string') return excerpt(error, secret);
      if (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string') {
        return excerpt(error.message, secret);
      }
    }
  } catch {
    // not JSON: use the text itself
  }
  return excerpt(text.trim(), secret);
}

function excerpt(text: string, secret: string | undefined): string {
  // Redact before cutting, so a key split by the cut cannot survive in part.
  const clean = redactSecret(text, secret);
  return clean.length > MAX_ERROR_BODY_CHARS ? `${clean.slice(0, MAX_ERROR_BODY_CHARS)}…` : clean;
}

function retryDelay(failure: Failure, attempt: number, policy: RetryPolicy): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  if (failure.retryAfterMs !== undefined) {
    return failure.retryAfterMs <= policy.maxRetryAfterMs ? failure.retryAfterMs : undefined;
  }
  return backoffDelayMs(attempt, policy);
}

/** Why one attempt failed, before it is known whether it will be retried. */
class Failure extends Error {
  override readonly name = 'Failure';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The reason an attempt is aborted with when the endpoint sends nothing for too long. */
class StallError extends Error {
  override readonly name = 'StallError';
  constructor(ms: number) {
    super(`the model endpoint sent nothing for ${ms} ms (idleTimeoutMs); the stream stalled`);
  }
}

function toFailure(err: unknown, secret: string | undefined): Failure {
  if (err instanceof Failure) return new Failure(redactSecret(err.message, secret), err.retryable, err.status, err.retryAfterMs);
  if (err instanceof StallError) return new Failure(err.message, true);
  if (err instanceof RangeError) return new Failure(redactSecret(err.message, secret), false);
  // fetch's network failures are TypeErrors whose cause says what happened (ECONNREFUSED…).
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return new Failure(redactSecret(`network error: ${message}${cause}`, secret), true);
}

/** A restartable one-shot timer. */
class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly ms: number,
    private readonly onIdle: () => void,
  ) {}

  arm(): void {
    this.disarm();
    this.timer = setTimeout(this.onIdle, this.ms);
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
