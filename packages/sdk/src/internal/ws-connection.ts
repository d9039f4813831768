/**
 * The one WebSocket of a session handle (`GET /api/sessions/{id}/ws`, notes in docs/sdk.md),
 * shared by every stream of that handle: opened on first use, messages routed by
 * `execution_id` (or `request_id` until an execute is `accepted`), reopened with backoff when it
 * drops (every live stream subscribes again from the last seq it queued), pinged so a dead peer
 * is noticed even where ping frames are invisible (browsers), and closed when idle.
 *
 * An `execute` is sent once and never again: the protocol has no idempotency key for it, so if
 * the socket drops before its `accepted`, the stream fails with a ConnectionError rather than
 * risk running the code twice. Once accepted, a drop is resumed without loss. The exception is a
 * socket the server refused at the upgrade (UNAUTHORIZED, NO_SESSION or TOO_MANY_SOCKETS before
 * any message): it read nothing, so its executes are sent again on the next socket.
 *
 * The protocol answers `subscribe`, `cancel` and `stdin` only when it refuses them, with an error
 * naming the execution; replies come in the order of the messages. So each of these is followed
 * by a `ping`: its `pong` says the command was taken, and an error before that pong is the
 * command's own. `stream.stdin()` and `cancel()` then resolve or reject as they do over HTTP.
 *
 * A run on a session that does not exist creates it over HTTP; the socket cannot (NO_SESSION at
 * the upgrade), so with `createSession` a refused socket carrying a run creates the session once and
 * dials again: `sluice.session("new-id").run(…)` behaves the same on both transports.
 */
import {
  assertNever,
  encodeClientMessage,
  parseServerMessage,
  WSCloseCode,
  type CancelMessage,
  type ClientMessage,
  type RefusalMessage,
  type RunRequest,
  type StdinMessage,
} from '@sluice/protocol';
import { ConnectionError, errorFromCode, InternalError, InvalidRequestError, NotFoundError, PayloadTooLargeError, SluiceError, UnauthorizedError } from '../errors.js';
import { WS_OPEN, type WebSocketConstructor, type WebSocketLike } from '../web-socket.js';
import { deferred, unref, type Deferred } from './abort.js';
import { backoffDelay, type ReconnectPolicy } from './backoff.js';
import { randomID } from './random-id.js';
import { WSExecutionSource, type WSChannel, type WSQueueLimits } from './ws-execution-source.js';

export interface WSConnectionOptions {
  /** `ws(s)://host/api/sessions/{id}/ws`. */
  url: string;
  /** `["sluice"]`, plus `sluice.auth.<key>` when the client has an API key. */
  protocols: string[];
  WebSocket: WebSocketConstructor;
  reconnect: ReconnectPolicy;
  queue: WSQueueLimits;
  /** Close the socket after this long without streams, milliseconds. */
  idleTimeoutMs: number;
  /** Send `ping` this often; a socket silent for twice as long is taken for dead. 0 disables. */
  pingIntervalMs: number;
  /** Creates the session when the server answers NO_SESSION to a socket that carries a run. */
  createSession?: (() => Promise<void>) | undefined;
  random?: () => number;
}

/**
 * A `ping` sent after a message the server answers only to refuse: its `pong` is the all-clear
 * (`keepalive` pings carry nothing).
 */
type Barrier =
  | { kind: 'keepalive' }
  | { kind: 'subscribe'; executionID: string; source: WSExecutionSource }
  | { kind: 'cancel' | 'stdin'; executionID: string; answered: Deferred<void> };

const PING = encodeClientMessage({ type: 'ping' });

/** Close codes with which the server refuses a socket at the upgrade, before reading any message. */
const REFUSED_AT_UPGRADE: ReadonlySet<number> = new Set([WSCloseCode.UNAUTHORIZED, WSCloseCode.NO_SESSION, WSCloseCode.TOO_MANY_SOCKETS]);

export class WSConnection implements WSChannel {
  private socket: WebSocketLike | undefined;
  private readonly sources = new Set<WSExecutionSource>();
  private readonly byExecution = new Map<string, WSExecutionSource>();
  private readonly byRequest = new Map<string, WSExecutionSource>();
  private openWaiters: Deferred<void>[] = [];
  /** Pings sent on the current socket and not answered yet, oldest first. */
  private barriers: Barrier[] = [];
  /** `cancel`/`stdin` commands waiting for their answer (they keep the socket from idling). */
  private pendingCommands = 0;
  /** Consecutive failed attempts since a message was last received. */
  private failures = 0;
  private lastFailure: unknown;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private lastHeard = 0;
  /** The current socket has delivered a message (so the server has read what was sent before). */
  private heard = false;
  /** The session is being created after a NO_SESSION close; set until the next dial. */
  private creating: Promise<void> | undefined;
  /** A NO_SESSION close already led to creating the session; a second one without a message in between fails. */
  private createdSession = false;
  /** Sockets opened so far (tests and diagnostics). */
  opened = 0;

  constructor(private readonly opts: WSConnectionOptions) {}

  /** Starts a run on this socket. */
  execute(body: RunRequest): WSExecutionSource {
    const source = new WSExecutionSource(this, { kind: 'run', requestID: randomID(), body }, this.opts.queue);
    if (source.start.kind === 'run') this.byRequest.set(source.start.requestID, source);
    this.adopt(source);
    if (this.isOpen()) this.sendExecute(source);
    return source;
  }

  /** Follows an existing execution from seq `from` (inclusive). */
  attach(executionID: string, from: number): WSExecutionSource {
    const existing = this.byExecution.get(executionID);
    if (existing?.live) {
      throw new InvalidRequestError(`execution ${executionID} is already streamed on this session's WebSocket; read it with transport "sse" for a second reader`);
    }
    const source = new WSExecutionSource(this, { kind: 'attach', executionID, from }, this.opts.queue);
    this.adopt(source);
    if (this.isOpen()) this.subscribe(source);
    return source;
  }

  /** Closes the socket; streams still open on it fail with a ConnectionError. */
  close(): void {
    this.failAll(new ConnectionError('the WebSocket was closed by close()'));
    this.clearIdle();
  }

  /** Streams currently following an execution (tests). */
  get liveStreams(): number {
    return this.sources.size;
  }

  // ---- WSChannel -------------------------------------------------------------------------

  sendIfOpen(message: ClientMessage): void {
    // When closed, nothing is lost: a reopened socket renews every live subscription.
    const ws = this.socket;
    if (ws && ws.readyState === WS_OPEN) ws.send(encodeClientMessage(message));
  }

  subscribe(source: WSExecutionSource): void {
    const ws = this.socket;
    const executionID = source.boundID;
    const message = source.subscribeMessage();
    if (!ws || ws.readyState !== WS_OPEN || executionID === undefined || message === undefined) return;
    ws.send(encodeClientMessage(message));
    this.ping(ws, { kind: 'subscribe', executionID, source });
  }

  async command(message: CancelMessage | StdinMessage): Promise<void> {
    this.pendingCommands++;
    this.clearIdle();
    try {
      if (!this.isOpen()) {
        const waiter = deferred<void>();
        this.openWaiters.push(waiter);
        this.ensureOpen();
        try {
          await waiter.promise;
        } finally {
          this.openWaiters = this.openWaiters.filter((w) => w !== waiter);
        }
      }
      const ws = this.socket;
      if (!ws || ws.readyState !== WS_OPEN) throw new ConnectionError(`the WebSocket closed before the ${message.type} could be sent`);
      const answered = deferred<void>();
      ws.send(encodeClientMessage(message));
      this.ping(ws, { kind: message.type, executionID: message.execution_id, answered });
      await answered.promise;
    } finally {
      this.pendingCommands--;
      this.maybeIdle();
    }
  }

  bound(source: WSExecutionSource): void {
    const id = source.boundID;
    if (id !== undefined && source.live) this.byExecution.set(id, source);
  }

  release(source: WSExecutionSource): void {
    this.sources.delete(source);
    if (source.start.kind === 'run') this.byRequest.delete(source.start.requestID);
    const id = source.boundID;
    if (id !== undefined && this.byExecution.get(id) === source) this.byExecution.delete(id);
    this.maybeIdle();
  }

  // ---- the socket ------------------------------------------------------------------------

  private adopt(source: WSExecutionSource): void {
    this.sources.add(source);
    this.clearIdle();
    this.ensureOpen();
  }

  private isOpen(): boolean {
    return this.socket !== undefined && this.socket.readyState === WS_OPEN;
  }

  private hasWork(): boolean {
    return this.sources.size > 0 || this.openWaiters.length > 0 || this.pendingCommands > 0;
  }

  private ping(ws: WebSocketLike, barrier: Barrier): void {
    ws.send(PING);
    this.barriers.push(barrier);
  }

  /** Settles the commands still waiting for their pong when the socket is gone. */
  private dropBarriers(err: (kind: 'cancel' | 'stdin') => unknown): void {
    const barriers = this.barriers;
    this.barriers = [];
    for (const b of barriers) if (b.kind === 'cancel' || b.kind === 'stdin') b.answered.reject(err(b.kind));
  }

  private ensureOpen(): void {
    if (this.socket !== undefined || this.retryTimer !== undefined || this.creating !== undefined) return;
    this.dial();
  }

  private dial(): void {
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocket(this.opts.url, this.opts.protocols);
    } catch (err: unknown) {
      // A malformed URL or a refused subprotocol list: retrying cannot help.
      this.failAll(new ConnectionError(`could not open a WebSocket to ${this.opts.url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      return;
    }
    this.socket = ws;
    this.heard = false;
    this.barriers = [];
    ws.addEventListener('open', () => {
      if (this.socket === ws) this.onOpen();
    });
    ws.addEventListener('message', (event) => {
      if (this.socket === ws) this.onMessage(event.data);
    });
    ws.addEventListener('error', (event) => {
      if (this.socket === ws) this.lastFailure = event;
    });
    ws.addEventListener('close', (event) => {
      if (this.socket === ws) this.onClose(event.code, event.reason);
    });
  }

  private onOpen(): void {
    this.opened++;
    this.lastHeard = Date.now();
    this.startPing();
    for (const source of this.sources) {
      if (!source.live) continue;
      if (source.start.kind === 'run' && !source.executeSent) {
        this.sendExecute(source);
        continue;
      }
      if (!source.paused) this.subscribe(source);
    }
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w.resolve();
    this.maybeIdle();
  }

  private sendExecute(source: WSExecutionSource): void {
    if (source.start.kind !== 'run' || source.executeSent) return;
    const ws = this.socket;
    if (!ws || ws.readyState !== WS_OPEN) return;
    source.executeSent = true;
    ws.send(encodeClientMessage({ type: 'execute', request_id: source.start.requestID, run: source.start.body }));
  }

  private onMessage(data: unknown): void {
    this.lastHeard = Date.now();
    this.failures = 0;
    this.heard = true;
    this.createdSession = false;
    const text = typeof data === 'string' ? data : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? new TextDecoder().decode(data) : undefined;
    if (text === undefined) return;
    const parsed = parseServerMessage(text);
    if (!parsed.ok) {
      // A malformed event ends its stream; anything else malformed is not ours to act on.
      if (parsed.eventOf !== undefined) this.byExecution.get(parsed.eventOf)?.fail(new InternalError(`an event is malformed: ${parsed.message}`));
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'accepted': {
        const source = this.byRequest.get(msg.request_id);
        if (!source) return;
        this.byRequest.delete(msg.request_id);
        source.bind(msg.execution_id);
        if (!source.live) {
          // Its consumer left before the server named the execution: stop the flow at once.
          this.sendIfOpen({ type: 'unsubscribe', execution_id: msg.execution_id });
        }
        return;
      }
      case 'pong': {
        const barrier = this.barriers.shift();
        if (barrier?.kind === 'cancel' || barrier?.kind === 'stdin') barrier.answered.resolve();
        return;
      }
      case 'end':
        // A subscribe from past the end of a finished log: the stream is over (HTTP's 204).
        this.byExecution.get(msg.execution_id)?.end();
        return;
      case 'error':
        this.onRefusal(msg);
        return;
      case 'event':
        this.byExecution.get(msg.execution_id)?.push(msg.event);
        return;
      case 'agent_accepted':
      case 'agent_end':
      case 'agent_event':
        // This connection never starts agent runs (the SDK streams them over HTTP).
        return;
      default:
        assertNever(msg, 'server message');
    }
  }

  /** A refused message: the answer to an execute or a subscribe that could not be done. */
  private onRefusal(msg: RefusalMessage): void {
    const requestID = msg.request_id;
    const executionID = msg.execution_id;
    const err = errorFromCode(msg.code, msg.error, requestID === undefined ? {} : { requestID });
    if (requestID !== undefined) {
      const source = this.byRequest.get(requestID);
      if (source) {
        this.byRequest.delete(requestID);
        source.fail(err);
      }
      return;
    }
    if (executionID === undefined) return;
    // Replies keep the order of the messages, and each refusable message is followed by a ping:
    // an error before the oldest unanswered pong refuses the message sent just before that ping.
    const head = this.barriers[0];
    if (head !== undefined && head.kind !== 'keepalive' && head.executionID === executionID) {
      this.barriers[0] = { kind: 'keepalive' }; // its pong still comes, and now settles nothing
      if (head.kind === 'subscribe') {
        // The execution is gone, or the socket follows too many: the stream cannot go on.
        if (this.byExecution.get(executionID) === head.source) head.source.fail(err);
      } else {
        head.answered.reject(err); // a refused stdin or cancel is the caller's, not the stream's
      }
      return;
    }
    if (err.code === 'NOT_FOUND') this.byExecution.get(executionID)?.fail(err);
  }

  private onClose(code: number, reason: string): void {
    this.socket = undefined;
    this.stopPing();
    this.dropBarriers((kind) => new ConnectionError(`the WebSocket closed (code ${code}) before the server confirmed the ${kind}${kind === 'stdin' ? '; the input may or may not have been written' : ''}`));
    if (!this.heard && REFUSED_AT_UPGRADE.has(code)) {
      // Refused before the server read a message: nothing ran, every execute may go again.
      for (const source of this.byRequest.values()) source.executeSent = false;
      if (code === WSCloseCode.NO_SESSION && this.createSessionAndRedial()) return;
    }
    const terminal = closeError(code, reason);
    if (terminal) {
      this.failAll(terminal);
      return;
    }
    // An execute in flight may or may not have started: never send it twice.
    for (const source of [...this.byRequest.values()]) {
      if (source.executeSent) {
        source.fail(
          new ConnectionError(
            `the WebSocket closed (code ${code}${reason ? `: ${reason}` : ''}) before the server acknowledged the run; it may have started (see GET /api/sessions/{id}), and is not sent again so that it never runs twice`,
          ),
        );
      }
    }
    if (!this.hasWork()) return; // reopened on next use
    this.failures++;
    this.lastFailure = new ConnectionError(`the WebSocket closed with code ${code}${reason ? ` (${reason})` : ''}`);
    if (this.failures > this.opts.reconnect.maxAttempts) {
      const attempts = this.opts.reconnect.maxAttempts;
      const why = this.lastFailure instanceof Error ? this.lastFailure.message : String(this.lastFailure);
      this.failAll(new ConnectionError(`lost the WebSocket after ${attempts} reconnection attempt${attempts === 1 ? '' : 's'} (reconnect.maxAttempts): ${why}`, { cause: this.lastFailure }));
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.hasWork()) this.dial();
    }, backoffDelay(this.failures, this.opts.reconnect, this.opts.random));
    // Not unref'd: between two sockets, this timer is what keeps a waiting program alive.
  }

  /**
   * After a NO_SESSION close at the upgrade: creates the session if a run is waiting (as an HTTP
   * run on a new id would) and dials again; false when that does not apply (no run, no
   * `createSession`, or it was just tried), and the close stands.
   */
  private createSessionAndRedial(): boolean {
    const create = this.opts.createSession;
    const runWaiting = [...this.byRequest.values()].some((s) => s.live && !s.executeSent);
    if (create === undefined || !runWaiting || this.createdSession) return false;
    this.createdSession = true;
    const creating = create().then(
      () => {
        if (this.creating !== creating) return; // close() came first
        this.creating = undefined;
        if (this.hasWork()) this.dial();
      },
      (err: unknown) => {
        if (this.creating !== creating) return;
        this.creating = undefined;
        this.failAll(err);
      },
    );
    this.creating = creating;
    return true;
  }

  /** Ends every stream and waiter with `err`, and the socket with it; the next use starts afresh. */
  private failAll(err: unknown): void {
    const ws = this.socket;
    this.socket = undefined;
    this.stopPing();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.creating = undefined;
    this.createdSession = false;
    this.dropBarriers(() => err);
    if (ws && ws.readyState <= WS_OPEN) ws.close(WSCloseCode.NORMAL);
    for (const source of [...this.sources]) source.fail(err);
    this.sources.clear();
    this.byExecution.clear();
    this.byRequest.clear();
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w.reject(err);
    this.failures = 0;
  }

  private startPing(): void {
    this.stopPing();
    const interval = this.opts.pingIntervalMs;
    if (interval <= 0) return;
    this.pingTimer = setInterval(() => {
      const ws = this.socket;
      if (!ws || ws.readyState !== WS_OPEN) return;
      if (Date.now() - this.lastHeard > 2 * interval) {
        // Silent through two pings: the peer or the path is gone, though no close came.
        this.socket = undefined;
        ws.close(WSCloseCode.CLIENT_PING_TIMEOUT, 'no answer to ping');
        this.onClose(WSCloseCode.CLIENT_PING_TIMEOUT, 'no answer to ping');
        return;
      }
      this.ping(ws, { kind: 'keepalive' });
    }, interval);
    unref(this.pingTimer);
  }

  private stopPing(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private maybeIdle(): void {
    if (this.hasWork() || this.socket === undefined || this.idleTimer !== undefined) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.hasWork()) return;
      const ws = this.socket;
      this.socket = undefined;
      this.stopPing();
      this.barriers = [];
      ws?.close(WSCloseCode.NORMAL);
    }, this.opts.idleTimeoutMs);
    unref(this.idleTimer);
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/** The error a close code means when retrying cannot help; undefined when it can. */
export function closeError(code: number, reason: string): SluiceError | undefined {
  const why = reason || undefined;
  switch (code) {
    case WSCloseCode.UNAUTHORIZED:
      return new UnauthorizedError(why ?? 'the WebSocket was refused: missing or wrong API key');
    case WSCloseCode.NO_SESSION:
      return new NotFoundError(why ?? 'no such session (or it was deleted)');
    case WSCloseCode.BAD_MESSAGES:
      return new InvalidRequestError(why ?? 'the server closed the WebSocket after malformed messages');
    case WSCloseCode.MESSAGE_TOO_BIG:
      return new PayloadTooLargeError(why ?? 'a message was over the WebSocket size limit');
    default:
      return undefined;
  }
}
