/**
 * One open WebSocket on a session (docs/websocket.md): answers the client's messages, follows
 * the logs of the executions it subscribed to (several at once, each frame tagged with its
 * execution id, each execution in seq order), checks the peer is alive, and closes with a code
 * that names the reason.
 *
 * Bounds: every outgoing frame goes through a SendPacer (an unread socket holds about 1 MiB of
 * events and 64 KiB of replies, no more); at most MAX_SUBSCRIPTIONS followers per socket;
 * incoming messages are capped by `maxPayload` (closed MESSAGE_TOO_BIG by `ws`). Executions a socket started
 * keep running when it closes: a client reconnects and subscribes from the last seq it saw.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import {
  acceptedMessage,
  agentAcceptedMessage,
  agentEndMessage,
  agentEventFrame,
  assertNever,
  endMessage,
  errorMessage,
  eventFrame,
  parseClientMessage,
  pongMessage,
  WSCloseCode,
  type AgentMessage,
  type ClientMessage,
  type ErrorCode,
  type ExecuteMessage,
  type MessageIDs,
} from '@sluice/protocol';
import type { LogEntry, LoggedEvent, ReadableLog } from '../execution/readable-log.js';
import { ApiError } from '../api-error.js';
import type { AgentRunHandle } from '../backend/agent-backend.js';
import type { ExecutionHandle } from '../backend/backend.js';
import type { ServerContext } from '../http/context.js';
import { closeReason } from './close-reason.js';
import { SendPacer, type DrainSource } from './send-pacer.js';

/** Malformed messages a socket may send; the last one closes it with BAD_MESSAGES. */
export const MAX_MALFORMED = 5;
/** Executions one socket may follow at once. */
export const MAX_SUBSCRIPTIONS = 64;
/** How long a server-initiated close waits for the peer's close frame before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 2000;
/** Messages waiting for their turn (see `onMessage`) past which the socket stops reading. */
const MAX_PENDING_MESSAGES = 64;

/**
 * The session a socket is on: its id, and the incarnation it had when the socket opened
 * (Backend.incarnation). The socket lives as long as that incarnation does: a session deleted
 * and created again under the same id is not this socket's any more.
 */
export interface SessionIncarnation {
  id: string;
  incarnation: string;
}

export interface ConnectionInit {
  ctx: ServerContext;
  owner: string | null;
  session: SessionIncarnation;
  log: FastifyBaseLogger;
}

/** What a socket can follow: an execution's log or an agent run's, with how its frames are tagged. */
interface Followable {
  /** `exec:{id}` or `run:{id}`: executions and runs have separate id spaces. */
  key: string;
  sessionID: string;
  log: Pick<ReadableLog<LoggedEvent>, 'closed' | 'lastSeq' | 'follow'>;
  frame(entry: LogEntry<string>): string;
  /** The answer to a subscribe from past the end of the finished log. */
  end(lastSeq: number): string;
  /** What an error about this follower names. */
  ids: MessageIDs;
}

function followableExecution(exec: ExecutionHandle): Followable {
  return {
    key: `exec:${exec.id}`,
    sessionID: exec.sessionID,
    log: exec.log,
    frame: (entry) => eventFrame(entry, exec.id),
    end: (lastSeq) => endMessage(exec.id, lastSeq),
    ids: { execution_id: exec.id },
  };
}

function followableRun(run: AgentRunHandle): Followable {
  return {
    key: `run:${run.id}`,
    sessionID: run.sessionID,
    log: run.log,
    frame: (entry) => agentEventFrame(entry, run.id),
    end: (lastSeq) => agentEndMessage(run.id, lastSeq),
    ids: { run_id: run.id },
  };
}

/** One follower: a log, read from `from`, until its last event or `abort`. */
interface Subscription {
  target: Followable;
  ac: AbortController;
  /** Settles when the follower has stopped. */
  ended: Promise<void>;
}

export class WSConnection {
  readonly owner: string | null;
  readonly session: SessionIncarnation;
  private readonly ctx: ServerContext;
  private readonly log: FastifyBaseLogger;
  private readonly pacer: SendPacer;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly heartbeat: NodeJS.Timeout | null;
  private malformed = 0;
  private closing = false;
  private pongSeen = true;
  private flushedAtPing = 0;
  private killTimer: NodeJS.Timeout | null = null;
  /** Messages are handled one after another, in arrival order, though handling one may wait on the backend. */
  private ordered: Promise<void> = Promise.resolve();
  private pending = 0;
  /** Set while the socket is corked until the end of the turn (corkTurn). */
  private corkedTurn: object | null = null;
  private checkingSession = false;
  private resolveClosed!: () => void;
  /** Resolves once the socket has closed and every follower has stopped. */
  readonly closed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly raw: DrainSource,
    init: ConnectionInit,
  ) {
    this.ctx = init.ctx;
    this.owner = init.owner;
    this.session = init.session;
    this.log = init.log;
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.pacer = new SendPacer(ws, raw);
    // `ws` does this too; said here so that no small frame ever waits for a delayed ACK (Nagle).
    raw.setNoDelay?.(true);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => (this.pongSeen = true));
    // `ws` closes the socket itself on protocol errors (1002, 1007, MESSAGE_TOO_BIG); this only logs them.
    ws.on('error', (err) => this.log.debug({ err }, 'websocket error'));
    ws.once('close', () => void this.onClose());
    const periodMs = this.ctx.config.heartbeatSec * 1000;
    this.heartbeat = periodMs > 0 ? setInterval(() => this.beat(), periodMs) : null;
  }

  /**
   * Closes with `code`. With `flushMs` > 0 the followers first get up to that long to send what
   * their logs hold up to `done` (shutdown, a deleted session): a client sees how its executions
   * ended. New messages are ignored from now on.
   */
  async shut(code: WSCloseCode, reason: string, flushMs = 0): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (flushMs > 0 && this.subscriptions.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, flushMs)));
      await Promise.race([Promise.all([...this.subscriptions.values()].map((s) => s.ended)), timeout]);
      clearTimeout(timer);
    }
    for (const s of this.subscriptions.values()) s.ac.abort();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason));
    // A peer that does not read never sees the close frame: do not wait for its answer forever.
    this.killTimer = setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS);
    this.killTimer.unref();
  }

  /** Closes with NO_SESSION when the session is gone (deleted, expired, or replaced by a new one of that id). */
  checkSession(): void {
    // At shutdown sessions close before the sockets get GOING_AWAY: that is not a deletion.
    if (this.closing || this.checkingSession || this.ctx.draining()) return;
    this.checkingSession = true;
    void this.sessionAlive()
      .then((alive) => {
        if (!alive && !this.closing && !this.ctx.draining()) void this.shut(WSCloseCode.NO_SESSION, `session ${this.session.id} was deleted`, this.ctx.config.killGraceMs + 1000);
      })
      .finally(() => (this.checkingSession = false));
  }

  /** True while the incarnation the socket opened on is the live session of its id (false when the backend cannot say). */
  private async sessionAlive(): Promise<boolean> {
    try {
      return (await this.ctx.backend.incarnation(this.owner, this.session.id)) === this.session.incarnation;
    } catch {
      return false;
    }
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.pongSeen = true;
    if (this.closing) return;
    // In arrival order even when one waits on the backend (a subscribe then its unsubscribe, a
    // ping after a stdin): each runs once the one before it has; past a bound, reading stops.
    if (++this.pending >= MAX_PENDING_MESSAGES) this.ws.pause();
    this.ordered = this.ordered
      .then(() => this.handleMessage(data, isBinary))
      .catch((err: unknown) => this.log.error({ err }, 'websocket message failed'))
      .finally(() => {
        if (--this.pending < MAX_PENDING_MESSAGES && this.ws.isPaused) this.ws.resume();
      });
  }

  private async handleMessage(data: RawData, isBinary: boolean): Promise<void> {
    if (this.closing) return;
    if (isBinary) {
      this.malformedMessage({}, 'message: expected a JSON text frame, got a binary frame');
      return;
    }
    const parsed = parseClientMessage(toBuffer(data).toString('utf8'));
    if (!parsed.ok) {
      this.malformedMessage(parsed.ids, parsed.message, parsed.code);
      return;
    }
    await this.dispatch(parsed.value);
  }

  private malformedMessage(ids: MessageIDs, message: string, code: ErrorCode = 'INVALID_REQUEST'): void {
    this.malformed++;
    this.pacer.sendReply(errorMessage(code, message, ids));
    if (this.malformed >= MAX_MALFORMED) {
      void this.shut(WSCloseCode.BAD_MESSAGES, `${this.malformed} malformed messages; the last: ${message}`);
    }
  }

  /** Handles one message; resolves when the next may be handled (`execute` and `agent` go on meanwhile, as they may take long). */
  private async dispatch(m: ClientMessage): Promise<void> {
    switch (m.type) {
      case 'execute':
        void this.execute(m);
        return;
      case 'subscribe':
        return this.attempt({ execution_id: m.execution_id }, async () => this.subscribe(followableExecution(await this.ctx.backend.execution(this.owner, m.execution_id)), m.from));
      case 'agent_subscribe':
        return this.attempt({ run_id: m.run_id }, async () => this.subscribe(followableRun(await this.ctx.agents.run(this.owner, m.run_id)), m.from));
      case 'unsubscribe':
        this.unsubscribe(`exec:${m.execution_id}`);
        return;
      case 'agent_unsubscribe':
        this.unsubscribe(`run:${m.run_id}`);
        return;
      case 'cancel':
        return this.attempt({ execution_id: m.execution_id }, async () => {
          await (await this.ctx.backend.execution(this.owner, m.execution_id)).cancel(this.ctx.config.killGraceMs);
        });
      case 'stdin':
        return this.attempt({ execution_id: m.execution_id }, async () => {
          await (await this.ctx.backend.execution(this.owner, m.execution_id)).writeStdin(m.data, m.eof);
        });
      case 'ping':
        this.pacer.sendReply(pongMessage());
        return;
      case 'agent':
        void this.agent(m);
        return;
      case 'agent_cancel':
        return this.attempt({ run_id: m.run_id }, async () => {
          await (await this.ctx.agents.run(this.owner, m.run_id)).cancel();
        });
      default:
        assertNever(m, 'message');
    }
  }

  private async execute(m: ExecuteMessage): Promise<void> {
    const ids = { request_id: m.request_id };
    try {
      if (!(await this.admitStart(ids))) return;
      const exec = await this.ctx.backend.submitRun(this.owner, this.session.id, m.run, this.log);
      // Closed meanwhile: the execution runs on (like a dropped HTTP stream), nobody to tell.
      if (this.closing) return;
      // `accepted` and the `start` already in the log go out in one write: the follower's first
      // batch is written within this turn's microtasks.
      this.corkTurn();
      this.pacer.sendReply(acceptedMessage(m.request_id, exec.id));
      this.follow(followableExecution(exec), 1);
    } catch (err) {
      this.replyError(err, ids);
    }
  }

  /** Starts an agent run in the socket's session; its events follow, tagged with `run_id`. It goes on if the socket closes. */
  private async agent(m: AgentMessage): Promise<void> {
    const ids = { request_id: m.request_id };
    try {
      if (!(await this.admitStart(ids))) return;
      const run = await this.ctx.agents.start(this.owner, this.session.id, m.agent);
      if (this.closing) return;
      this.pacer.sendReply(agentAcceptedMessage(m.request_id, run.id));
      this.follow(followableRun(run), 1);
    } catch (err) {
      this.replyError(err, ids);
    }
  }

  /**
   * What an `execute` or an `agent` needs before it starts: the session still there (else
   * NOT_FOUND and the socket closes), a healthy server, room for one more follower. False when
   * it has answered already; throws what the caller answers.
   */
  private async admitStart(ids: MessageIDs): Promise<boolean> {
    if (!(await this.sessionAlive())) {
      this.replyError(new ApiError('NOT_FOUND', `session ${JSON.stringify(this.session.id)} was deleted`), ids);
      this.checkSession();
      return false;
    }
    const unhealthy = this.ctx.health();
    if (unhealthy !== null) throw new ApiError('SANDBOX_UNAVAILABLE', unhealthy, { retryAfter: 5 });
    this.checkRoom();
    return true;
  }

  private subscribe(target: Followable, from: number): void {
    if (!this.subscriptions.has(target.key)) this.checkRoom();
    this.follow(target, from);
  }

  private unsubscribe(key: string): void {
    this.subscriptions.get(key)?.ac.abort();
    this.subscriptions.delete(key);
  }

  /** Runs a message's action, answering a failure with an error message that names its ids. */
  private async attempt(ids: MessageIDs, action: () => unknown): Promise<void> {
    try {
      await action();
    } catch (err) {
      this.replyError(err, ids);
    }
  }

  private replyError(err: unknown, ids: MessageIDs): void {
    if (this.closing) return;
    if (err instanceof ApiError) {
      this.pacer.sendReply(errorMessage(err.code, err.message, ids));
      return;
    }
    this.log.error({ err }, 'websocket message failed');
    this.pacer.sendReply(errorMessage('INTERNAL', 'internal error; see the server log', ids));
  }

  private checkRoom(): void {
    if (this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new ApiError(
        'RATE_LIMITED',
        `this socket follows ${this.subscriptions.size} executions, its maximum; unsubscribe from one, or open another socket`,
      );
    }
  }

  /** Starts (or restarts, from `from`) following a log onto the socket. */
  private follow(target: Followable, from: number): void {
    this.subscriptions.get(target.key)?.ac.abort();
    const ac = new AbortController();
    const sub: Subscription = { target, ac, ended: Promise.resolve() };
    sub.ended = this.pump(target, from, ac.signal)
      .catch((err: unknown) => {
        // The log could not be read further (a Redis that is gone): the client is told, so it can
        // subscribe again from the last seq it got, rather than wait for events that never come.
        this.log.error({ err, followed: target.key }, 'websocket follower failed');
        if (!this.closing && !ac.signal.aborted) {
          const why = err instanceof Error ? err.message : String(err);
          this.pacer.sendReply(errorMessage('SANDBOX_UNAVAILABLE', `the log could not be followed further (${why}); subscribe again from the last seq you got`, target.ids));
        }
      })
      .finally(() => {
        if (this.subscriptions.get(target.key) === sub) this.subscriptions.delete(target.key);
      });
    this.subscriptions.set(target.key, sub);
  }

  private async pump(target: Followable, from: number, signal: AbortSignal): Promise<void> {
    // A reader keeps the session from expiring under it, as an HTTP stream does.
    const detach = this.ctx.backend.attach(this.owner, target.sessionID);
    try {
      let sent = 0;
      for await (const batch of target.log.follow(from, signal)) {
        // One frame per event (the contract), but the frames of one turn (a batch, or a kernel
        // cell's result and its done, appended in the same drain) reach the kernel in one writev.
        this.corkTurn();
        for (const entry of batch) {
          if (this.pacer.full) {
            this.uncorkTurn();
            await this.pacer.room(signal);
            this.corkTurn();
          }
          if (signal.aborted) return;
          this.pacer.sendEvent(target.frame(entry));
          sent++;
        }
      }
      // Past the end of a finished log: say so, rather than leave the client waiting.
      if (!signal.aborted && sent === 0 && target.log.closed) this.pacer.sendReply(target.end(target.log.lastSeq));
    } finally {
      detach();
    }
  }

  /**
   * Corks the socket until the end of this turn (the tick queue runs once the microtasks, where
   * the followers write, are done): no timer, so a lone frame still goes at once.
   */
  private corkTurn(): void {
    if (this.corkedTurn !== null) return;
    const turn = {};
    this.corkedTurn = turn;
    this.raw.cork?.();
    process.nextTick(() => {
      if (this.corkedTurn === turn) this.uncorkTurn();
    });
  }

  private uncorkTurn(): void {
    if (this.corkedTurn === null) return;
    this.corkedTurn = null;
    this.raw.uncork?.();
  }

  /**
   * Every heartbeat period: a ping frame. A peer that answered none of the last one and read
   * nothing since is gone (or stuck): closed with UNRESPONSIVE. A peer that is reading a backlog slowly
   * has not answered yet because the ping waits behind the data; it is progressing, so it stays.
   */
  private beat(): void {
    if (this.closing) return;
    if (!this.pongSeen && this.pacer.flushed === this.flushedAtPing) {
      this.log.debug('websocket peer did not answer a ping; closing it');
      void this.shut(WSCloseCode.UNRESPONSIVE, 'no answer to ping frames');
      return;
    }
    this.pongSeen = false;
    this.flushedAtPing = this.pacer.flushed;
    this.ws.ping();
  }

  private async onClose(): Promise<void> {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.pacer.close();
    const subs = [...this.subscriptions.values()];
    for (const s of subs) s.ac.abort();
    await Promise.all(subs.map((s) => s.ended));
    this.resolveClosed();
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
