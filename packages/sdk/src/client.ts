/**
 * `new Sluice({ baseURL, apiKey })`: the client. It holds the settings every request shares and
 * hands out session handles (one per session id, so streams over WebSocket share one socket).
 */
import { ConnectionError } from './errors.js';
import { Executions } from './executions.js';
import { reconnectPolicy, type ReconnectOptions } from './internal/backoff.js';
import { checkTransport, type ClientContext, type Transport } from './internal/client-context.js';
import { HTTPClient, type FetchFunction } from './internal/http-client.js';
import { DEFAULT_WS_QUEUE } from './internal/ws-execution-source.js';
import { Session } from './session.js';
import { checkID, Sessions } from './sessions.js';
import { readLanguageInfo, readList, type LanguageInfo } from './views.js';
import type { WebSocketConstructor } from './web-socket.js';

/** Settings of a client. Only `baseURL` is required. */
export interface SluiceOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseURL: string;
  /** Sent as `Authorization: Bearer …` (and in the WebSocket's subprotocol). */
  apiKey?: string | undefined;
  /** How streams travel unless a call says otherwise (default `sse`). */
  transport?: Transport | undefined;
  /** The fetch to use (default: the global one). */
  fetch?: FetchFunction | undefined;
  /** The WebSocket class (default `globalThis.WebSocket`; in Node 20 pass `ws`'s). */
  WebSocket?: WebSocketConstructor | undefined;
  /** Deadline of each request that is not a stream, milliseconds (default 60 000; 0 for none): TimeoutError. */
  timeoutMs?: number | undefined;
  /** How dropped streams reconnect (bounded exponential backoff with jitter). */
  reconnect?: ReconnectOptions | undefined;
  /** SSE: silence (no event, no `: ping`) after which a stream is taken for dead and resumed, ms (default 45 000). */
  heartbeatTimeoutMs?: number | undefined;
  webSocket?: {
    /** Close a session's socket after this long without streams, ms (default 5000). */
    idleTimeoutMs?: number | undefined;
    /** Application-level ping period, ms (default 15 000; a socket silent for two periods is reopened). */
    pingIntervalMs?: number | undefined;
    /** A stream's queue of undelivered events: past this, it unsubscribes until drained (default 1024). */
    maxQueuedEvents?: number | undefined;
    /** The same bound in approximate bytes (default 8 MiB). */
    maxQueuedBytes?: number | undefined;
  };
  /** Extra headers on every HTTP request. */
  headers?: Record<string, string> | undefined;
}

/** What `GET /` says about a server. */
export interface ServerInfo {
  name: string;
  /** True when the server has an LLM endpoint configured, so `session.agent` runs can work. */
  agent: boolean;
}

/** The client of one Sluice server: `sessions`, `executions`, `session(id)` handles and `languages()`; options are checked here, with messages that name them. */
export class Sluice {
  readonly sessions: Sessions;
  readonly executions: Executions;
  private readonly ctx: ClientContext;
  private readonly handles = new Map<string, Session>();

  constructor(options: SluiceOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('new Sluice(options): expected an object with at least baseURL');
    const baseURL = checkBaseURL(options.baseURL);
    if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
      throw new TypeError('apiKey: expected a non-empty string, or no apiKey for a server without keys');
    }
    const fetchFn = options.fetch ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined);
    if (fetchFn === undefined) throw new TypeError('fetch: this runtime has no global fetch; pass one in the options (new Sluice({ baseURL, fetch }))');
    const timeoutMs = nonNegative(options.timeoutMs, 60_000, 'timeoutMs');
    const ws = options.webSocket ?? {};
    this.ctx = {
      http: new HTTPClient({ baseURL, apiKey: options.apiKey, fetch: fetchFn, timeoutMs, headers: lowerCaseKeys(options.headers ?? {}) }),
      transport: options.transport === undefined ? 'sse' : checkTransport(options.transport, 'transport'),
      reconnect: reconnectPolicy(options.reconnect),
      heartbeatTimeoutMs: positive(options.heartbeatTimeoutMs, 45_000, 'heartbeatTimeoutMs'),
      commandTimeoutMs: timeoutMs === 0 ? 10_000 : Math.min(timeoutMs, 10_000),
      WebSocket: options.WebSocket ?? globalWebSocket(),
      ws: {
        idleTimeoutMs: nonNegative(ws.idleTimeoutMs, 5000, 'webSocket.idleTimeoutMs'),
        pingIntervalMs: nonNegative(ws.pingIntervalMs, 15_000, 'webSocket.pingIntervalMs'),
        queue: {
          maxEvents: positive(ws.maxQueuedEvents, DEFAULT_WS_QUEUE.maxEvents, 'webSocket.maxQueuedEvents'),
          maxBytes: positive(ws.maxQueuedBytes, DEFAULT_WS_QUEUE.maxBytes, 'webSocket.maxQueuedBytes'),
        },
      },
    };
    if (this.ctx.transport === 'websocket' && this.ctx.WebSocket === undefined) {
      throw new TypeError(
        'transport "websocket": this runtime has no global WebSocket (Node 20 has none by default); pass one with new Sluice({ baseURL, transport: "websocket", WebSocket }) (e.g. `import WebSocket from "ws"`)',
      );
    }
    this.sessions = new Sessions(this.ctx, (id) => this.session(id), (id) => this.handles.delete(id));
    this.executions = new Executions(this.ctx);
  }

  /** The server's base URL, without a trailing slash. */
  get baseURL(): string {
    return this.ctx.http.baseURL;
  }

  /**
   * A handle on session `id`, without a request (its `settings` stay undefined until
   * `refresh()`). A run on an id that does not exist creates the session with defaults; the
   * same id always returns the same handle.
   */
  session(id: string): Session {
    checkID(id);
    let s = this.handles.get(id);
    if (!s) {
      s = new Session(this.ctx, id);
      this.handles.set(id, s);
    }
    return s;
  }

  /** The runtimes this server knows and whether each is installed (`GET /api/languages`). */
  async languages(opts: { signal?: AbortSignal } = {}): Promise<LanguageInfo[]> {
    return readList(await this.ctx.http.json('GET', '/api/languages', { signal: opts.signal }), 'languages', readLanguageInfo);
  }

  /** `GET /`: the server's name and whether agent runs can work here (an LLM endpoint is configured). */
  async info(opts: { signal?: AbortSignal } = {}): Promise<ServerInfo> {
    const value = await this.ctx.http.json('GET', '/', { headers: { accept: 'application/json' }, signal: opts.signal });
    const v = typeof value === 'object' && value !== null ? (value as { name?: unknown; agent?: unknown }) : {};
    if (typeof v.name !== 'string') throw new ConnectionError('GET /: the answer has no name');
    // A server from before the field: agent runs are then unknown, taken as unavailable.
    return { name: v.name, agent: v.agent === true };
  }

  /** `GET /healthz`: resolves when the server can run code; SandboxUnavailableError when it cannot. */
  async health(opts: { signal?: AbortSignal } = {}): Promise<{ status: string }> {
    const value = await this.ctx.http.json('GET', '/healthz', { signal: opts.signal });
    const status = typeof value === 'object' && value !== null ? (value as { status?: unknown }).status : undefined;
    if (typeof status !== 'string') throw new ConnectionError('GET /healthz: the answer has no status');
    return { status };
  }

  /** Closes every session handle's WebSocket (streams still on them fail). HTTP needs no closing. */
  close(): void {
    for (const s of this.handles.values()) s.close();
  }
}

function checkBaseURL(value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`baseURL: expected the server's URL as a string (e.g. "http://127.0.0.1:8080"), got ${typeof value}`);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new TypeError(`baseURL: expected an absolute http(s) URL such as "http://127.0.0.1:8080", got ${JSON.stringify(value)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`baseURL: expected an http: or https: URL, got ${JSON.stringify(value)}`);
  if (u.search !== '' || u.hash !== '') throw new TypeError(`baseURL: expected no query or fragment, got ${JSON.stringify(value)}`);
  return u.toString().replace(/\/+$/, '');
}

function globalWebSocket(): WebSocketConstructor | undefined {
  const g = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof g === 'function' ? (g as WebSocketConstructor) : undefined;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RangeError(`${name}: expected milliseconds >= 0, got ${JSON.stringify(value)}`);
  return value;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new RangeError(`${name}: expected a number > 0, got ${JSON.stringify(value)}`);
  return value;
}

function lowerCaseKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
