/**
 * The one place the SDK talks HTTP: builds URLs under the base URL, adds the bearer token and an
 * `X-Request-Id`, turns non-2xx answers into typed errors (errors.ts), network failures into
 * ConnectionError and a client-side deadline into TimeoutError, each naming the request. A
 * caller's own AbortSignal rejects with its reason.
 */
import { ConnectionError, errorFromResponse, isAbortError, TimeoutError } from '../errors.js';
import { anySignal, unref } from './abort.js';
import { randomID } from './random-id.js';

/** The fetch the SDK calls: the global one, or any function of the same shape. */
export type FetchFunction = (input: string, init?: RequestInit) => Promise<Response>;

export interface HTTPClientOptions {
  baseURL: string;
  apiKey: string | undefined;
  fetch: FetchFunction;
  /** Deadline of a whole request that is not a stream, milliseconds; 0 for none. */
  timeoutMs: number;
  headers: Record<string, string>;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  /** A JSON body (sets Content-Type). */
  json?: unknown;
  /** A raw body (files). */
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Overrides the client's deadline; 0 for none (streams). */
  timeoutMs?: number | undefined;
  /** Statuses that are answers, not errors (204 of `/events`). */
  accept?: readonly number[];
}

export class HTTPClient {
  readonly baseURL: string;
  readonly apiKey: string | undefined;
  private readonly fetchFn: FetchFunction;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(opts: HTTPClientOptions) {
    this.baseURL = opts.baseURL.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.fetchFn = opts.fetch;
    this.timeoutMs = opts.timeoutMs;
    this.headers = opts.headers;
  }

  /** The absolute URL of an API path (already percent-encoded by the caller). */
  url(path: string, query?: Record<string, string | undefined>): string {
    const u = new URL(this.baseURL + path);
    if (query) for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, v);
    return u.toString();
  }

  /**
   * Sends one request and returns the answer once its headers are in (the body is the caller's
   * to read or cancel). Non-2xx answers throw their typed error.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { ...this.headers, ...opts.headers };
    if (this.apiKey !== undefined) headers['authorization'] = `Bearer ${this.apiKey}`;
    // Errors carry it, so a failure can be matched with a proxy's or the server's logs.
    const requestID = (headers['x-request-id'] ??= randomID());
    let body: BodyInit | undefined = opts.body;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const deadline = new AbortController();
    const timer = timeoutMs > 0 ? setTimeout(() => deadline.abort(), timeoutMs) : undefined;
    unref(timer);
    const linked = anySignal([opts.signal, deadline.signal]);
    const init: RequestInit = { method, headers, signal: linked.signal };
    if (body !== undefined) init.body = body;
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), init);
    } catch (err: unknown) {
      throw this.failure(err, what, opts.signal, deadline.signal, timeoutMs, requestID);
    } finally {
      clearTimeout(timer);
      linked.dispose();
    }
    if (res.ok || opts.accept?.includes(res.status)) return res;
    throw await errorFromResponse(res, what, requestID);
  }

  /** A request whose answer is JSON (or nothing, for 204). */
  async json(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const res = await this.request(method, path, opts);
    if (res.status === 204) return undefined;
    const text = await this.readText(res, `${method} ${path}`, opts.signal);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (err: unknown) {
      throw new ConnectionError(`${method} ${path}: the answer is not JSON: ${text.slice(0, 120)}`, { status: res.status, cause: err });
    }
  }

  /** Reads a body as text; a connection that fails mid-body is a ConnectionError. */
  async readText(res: Response, what: string, signal?: AbortSignal): Promise<string> {
    try {
      return await res.text();
    } catch (err: unknown) {
      throw this.failure(err, what, signal, undefined, 0);
    }
  }

  /** Reads a body as bytes. */
  async readBytes(res: Response, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err: unknown) {
      throw this.failure(err, what, signal, undefined, 0);
    }
  }

  /** What a failed fetch becomes: the caller's abort reason, a TimeoutError, or a ConnectionError. */
  private failure(err: unknown, what: string, callerSignal: AbortSignal | undefined, deadline: AbortSignal | undefined, timeoutMs: number, requestID?: string): unknown {
    if (callerSignal?.aborted) return callerSignal.reason;
    const details = requestID === undefined ? { cause: err } : { cause: err, requestID };
    if (deadline?.aborted) return new TimeoutError(`${what}: no answer within ${timeoutMs} ms (timeoutMs)`, details);
    if (isAbortError(err)) return err;
    return new ConnectionError(`${what}: ${describeNetworkError(err)} (is the server at ${this.baseURL} running?)`, details);
  }
}

/** A fetch failure's message with its cause (Node puts ECONNREFUSED and the like there). */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error && cause.message && cause.message !== err.message) return `${err.message}: ${cause.message}`;
  return err.message;
}
