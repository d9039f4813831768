/**
 * A session handle: runs code (buffered `run()` or live `stream()`), follows executions, reaches
 * the workspace's files, restarts kernels. Every stream of one handle over WebSocket shares the
 * handle's one socket, opened on first use and closed by `close()` or when idle.
 */
import type { Mode, RunRequest } from '@sluice/protocol';
import { ExecutionStream, type StreamCallbacks } from './execution-stream.js';
import { reconnectPolicy, type ReconnectOptions } from './internal/backoff.js';
import { base64url } from './internal/base64url.js';
import { checkTransport, requireWebSocket, webSocketURL, type ClientContext, type Transport } from './internal/client-context.js';
import { abortedSource, type ExecutionEventSource } from './internal/event-source.js';
import { randomID } from './internal/random-id.js';
import { SSEExecutionSource } from './internal/sse-execution-source.js';
import { WSConnection } from './internal/ws-connection.js';
import type { RunResult } from './run-result.js';
import { SessionAgent } from './session-agent.js';
import { SessionFiles } from './session-files.js';
import { readField, readSessionInfo, type SessionInfo } from './views.js';

/** Options of one run (`run()` and `stream()`). */
export interface RunOptions extends StreamCallbacks {
  /** Defaults to the session's language. */
  language?: string | undefined;
  /** `process` (a fresh interpreter) or `kernel` (state kept between runs, where the server has it). */
  mode?: Mode | undefined;
  /** Seconds before the server stops the program (`reason: "timeout"`); capped by the server. */
  timeout?: number | undefined;
  /** Given to the program's stdin, then EOF. Without it, stdin stays open for `stream.stdin()`. */
  stdin?: string | undefined;
  /** Environment for this run only, over the session's. */
  env?: Record<string, string> | undefined;
  /** SSE only: seconds between the server's `: ping` comments (default 15). */
  heartbeat?: number | undefined;
  /** This call's transport (default: the client's). */
  transport?: Transport | undefined;
  /** Aborting cancels the execution on the server and rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * Leaving the loop early (`break`, abort) cancels the execution (default true). With false the
   * run goes on without this reader; follow it again with `attach(executionID, { from })`.
   */
  cancelOnLeave?: boolean | undefined;
  /** This call's reconnection policy (default: the client's). */
  reconnect?: ReconnectOptions | undefined;
  /** SSE only: the start's `Idempotency-Key` (default: random per call). Reuse one to make a retried call return the same execution. */
  idempotencyKey?: string | undefined;
}

/** Options of following an existing execution. */
export interface AttachOptions extends StreamCallbacks {
  /** First seq wanted (inclusive), default 1 (the whole log). */
  from?: number | undefined;
  /** Leaving the loop early cancels the execution (default false: a reader that attaches only watches). */
  cancelOnLeave?: boolean | undefined;
  transport?: Transport | undefined;
  signal?: AbortSignal | undefined;
  reconnect?: ReconnectOptions | undefined;
}

/** A handle on one session: `run()`/`stream()` code, `attach()` to executions, `files`, `refresh()`, `restart()`, `delete()`; it shares one WebSocket among its streams. */
export class Session {
  /** The session's id. */
  readonly id: string;
  /** What the server last said about the session; undefined for a handle made without a request (`sluice.session(id)`) until `refresh()`. */
  settings: SessionInfo | undefined;
  /** The session's workspace. */
  readonly files: SessionFiles;
  /** Agent runs in this session: a model that writes and runs code here (`agent.stream(prompt)`). */
  readonly agent: SessionAgent;
  private ws: WSConnection | undefined;

  /** @internal Use `sluice.session(id)` or `sluice.sessions.create()`. */
  constructor(
    private readonly ctx: ClientContext,
    id: string,
    settings?: SessionInfo,
  ) {
    this.id = id;
    this.settings = settings;
    this.files = new SessionFiles(ctx, id);
    this.agent = new SessionAgent(ctx, id);
  }

  /**
   * Runs code and resolves with its result once it is done: a non-zero exit, a timeout or a
   * cancel are results (`reason`), not exceptions. Callbacks fire while it runs.
   */
  run(code: string, opts: RunOptions = {}): Promise<RunResult> {
    return this.stream(code, opts).result();
  }

  /** Runs code and streams its events as they happen (see {@link ExecutionStream}). */
  stream(code: string, opts: RunOptions = {}): ExecutionStream {
    if (typeof code !== 'string') throw new TypeError(`code: expected a string, got ${typeof code}`);
    const transport = opts.transport === undefined ? this.ctx.transport : checkTransport(opts.transport, 'transport');
    const body = runBody(code, opts, transport);
    const reconnect = reconnectPolicy(opts.reconnect, this.ctx.reconnect);
    let source: ExecutionEventSource;
    if (opts.signal?.aborted) {
      // Aborted before it began: nothing is sent (a WebSocket execute would go out at once).
      source = abortedSource(opts.signal.reason);
    } else if (transport === 'websocket') {
      source = this.connection().execute(body);
    } else {
      const idempotencyKey = opts.idempotencyKey ?? randomID();
      source = new SSEExecutionSource(this.ctx.http, { kind: 'run', sessionID: this.id, body, idempotencyKey }, this.sourceOptions(reconnect));
    }
    return new ExecutionStream(source, { ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
  }

  /** Follows an execution of this session (a run started elsewhere, or one to resume), from `from`. */
  attach(executionID: string, opts: AttachOptions = {}): ExecutionStream {
    const transport = opts.transport === undefined ? this.ctx.transport : checkTransport(opts.transport, 'transport');
    const from = checkFrom(opts.from);
    const source =
      transport === 'websocket'
        ? this.connection().attach(executionID, from)
        : new SSEExecutionSource(this.ctx.http, { kind: 'attach', executionID, from }, this.sourceOptions(reconnectPolicy(opts.reconnect, this.ctx.reconnect)));
    return new ExecutionStream(source, { cancelOnLeave: false, ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
  }

  /** Fetches the session's current state into {@link settings}. */
  async refresh(opts: { signal?: AbortSignal } = {}): Promise<SessionInfo> {
    this.settings = readSessionInfo(await this.ctx.http.json('GET', this.path(), { signal: opts.signal }));
    return this.settings;
  }

  /**
   * Restarts the session's kernels (their variables and imports are lost; a cell running now
   * ends `cancelled`). Resolves with the languages whose kernels were stopped.
   */
  async restart(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const value = await this.ctx.http.json('POST', `${this.path()}/restart`, { signal: opts.signal });
    try {
      this.settings = readSessionInfo(value);
    } catch {
      // An answer without the session view is still a successful restart.
    }
    const restarted = value === undefined ? undefined : readField(value, 'restarted', 'restart');
    return Array.isArray(restarted) ? restarted.filter((l): l is string => typeof l === 'string') : [];
  }

  /** Destroys the session: every process killed, the workspace removed. Closes this handle's socket. */
  async delete(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const res = await this.ctx.http.request('DELETE', this.path(), { signal: opts.signal });
    await res.body?.cancel();
    this.close();
  }

  /** Closes this handle's WebSocket, if it has one (streams still on it fail). The session lives on. */
  close(): void {
    this.ws?.close();
    this.ws = undefined;
  }

  private path(): string {
    return `/api/sessions/${encodeURIComponent(this.id)}`;
  }

  private sourceOptions(reconnect: ReturnType<typeof reconnectPolicy>): ConstructorParameters<typeof SSEExecutionSource>[2] {
    return { reconnect, heartbeatTimeoutMs: this.ctx.heartbeatTimeoutMs, commandTimeoutMs: this.ctx.commandTimeoutMs };
  }

  /** The handle's socket, created on first use (it dials when a stream needs it). */
  private connection(): WSConnection {
    if (this.ws) return this.ws;
    const WebSocket = requireWebSocket(this.ctx);
    const protocols = ['sluice'];
    const key = this.ctx.http.apiKey;
    if (key !== undefined) protocols.push(`sluice.auth.${base64url(key)}`);
    this.ws = new WSConnection({
      url: webSocketURL(this.ctx.http.baseURL, this.id),
      protocols,
      WebSocket,
      reconnect: this.ctx.reconnect,
      queue: this.ctx.ws.queue,
      idleTimeoutMs: this.ctx.ws.idleTimeoutMs,
      pingIntervalMs: this.ctx.ws.pingIntervalMs,
      createSession: () => this.createIfMissing(),
    });
    return this.ws;
  }

  /** Creates this session with the server's defaults unless it exists (what an HTTP run on a new id does). */
  private async createIfMissing(): Promise<void> {
    try {
      this.settings = readSessionInfo(await this.ctx.http.json('POST', '/api/sessions', { json: { id: this.id }, timeoutMs: this.ctx.commandTimeoutMs }));
    } catch (err: unknown) {
      // Refused because another client created it meanwhile is success too: the session is there.
      try {
        await this.refresh();
      } catch {
        throw err;
      }
    }
  }
}

/** The wire body of a run, checking each option (messages name it). */
function runBody(code: string, opts: RunOptions, transport: Transport): RunRequest {
  const body: RunRequest = { code };
  if (opts.language !== undefined) body.language = opts.language;
  if (opts.mode !== undefined) {
    if (opts.mode !== 'kernel' && opts.mode !== 'process') throw new TypeError(`mode: expected "kernel" or "process", got ${JSON.stringify(opts.mode)}`);
    body.mode = opts.mode;
  }
  if (opts.timeout !== undefined) {
    if (!(typeof opts.timeout === 'number' && opts.timeout > 0)) throw new TypeError(`timeout: expected seconds > 0, got ${JSON.stringify(opts.timeout)}`);
    body.timeout = opts.timeout;
  }
  if (opts.stdin !== undefined) body.stdin = opts.stdin;
  if (opts.env !== undefined) body.env = opts.env;
  // The WebSocket's execute has no heartbeat: the socket has its own keepalive.
  if (opts.heartbeat !== undefined && transport === 'sse') body.heartbeat = opts.heartbeat;
  return body;
}

function checkFrom(from: number | undefined): number {
  if (from === undefined) return 1;
  if (!Number.isSafeInteger(from) || from < 1) throw new TypeError(`from: expected the first seq wanted, an integer >= 1, got ${JSON.stringify(from)}`);
  return from;
}
