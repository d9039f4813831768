/**
 * Commands to one worker, each delivered at most once: untrusted code never runs twice, so a
 * command is never redelivered, retried, or handed to another worker.
 *
 * Keys (RedisConnection.key):
 *   - `inbox:<wid>`: a stream with one consumer group (`g`). The sender XADDs (only while the
 *     worker's lease holds, in one script) an entry `r` = request id, `c` = the command's JSON,
 *     `t` = how long the sender waits, ms. The worker reads with XREADGROUP `>` only, never its
 *     pending list, so an entry read by a worker that died before answering is never read again;
 *     it replies, then XACK + XDEL. TTL renewed by the worker's heartbeat (cluster-registry.ts);
 *     the reaper deletes a dead worker's inbox.
 *   - `reply:<request id>`: a list the worker LPUSHes its reply to, PEXPIRE 30 s; the sender
 *     waits with BLPOP on a connection of its own (BlockingPool), until its deadline.
 *
 * A sender whose deadline passes gets SANDBOX_UNAVAILABLE; the worker then skips the command if
 * it has not started it yet (it is older than `t` by the worker's clock), so a timed-out request
 * does not run late. One session's commands are handled in order (a run before its stdin);
 * different sessions' at once, at most `maxInFlight` in all.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { dispatch, errorReply, parseWorkerCommand, replyError, type CommandHandlers, type CommandReply, type CommandResults, type CommandType, type WorkerCommand } from './commands.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

const GROUP = 'g';
const CONSUMER = 'w';
/** How long a reply waits for its sender, ms. */
const REPLY_TTL_MS = 30_000;
/** Entries an inbox keeps at most (roughly): a worker that stopped reading cannot grow it without bound. */
const MAX_INBOX = 10_000;
/** TTL of an inbox a sender created before its worker renewed it (the heartbeat sets the real one). */
const INBOX_TTL_MS = 24 * 3600 * 1000;

/** KEYS: lease, inbox. ARGV: request id, command JSON, wait ms. Returns 1, or 0 when the worker's lease is gone. */
const SEND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ${MAX_INBOX}, '*', 'r', ARGV[1], 'c', ARGV[2], 't', ARGV[3])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ${INBOX_TTL_MS}) end
return 1
`;

/** Sends commands to workers and, on a worker, consumes its own. */
export class Inbox {
  constructor(private readonly conn: RedisConnection) {}

  /**
   * Sends `command` to worker `workerID` and resolves with its result, or rejects with the
   * worker's ApiError; SANDBOX_UNAVAILABLE when the worker is not alive or does not answer
   * within `timeoutMs` (10 000). Never resent: when it rejects, the worker ran it at most once.
   */
  async send<C extends WorkerCommand>(workerID: string, command: C, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CommandResults[C['type']]> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const requestID = randomBytes(12).toString('base64url');
    const sent = await runScript(this.conn.writer, SEND, [this.conn.key(`lease:${workerID}`), this.conn.key(`inbox:${workerID}`)], [requestID, JSON.stringify(command), timeoutMs]);
    if (sent !== 1) throw new ApiError('SANDBOX_UNAVAILABLE', `the worker of this session is gone (${command.type} not sent); retry`, { retryAfter: 1 });
    const raw = await this.waitReply(requestID, deadline, opts.signal);
    if (raw === null) {
      opts.signal?.throwIfAborted();
      throw new ApiError('SANDBOX_UNAVAILABLE', `the worker did not answer ${command.type} within ${timeoutMs} ms (it may have died); retry`, { retryAfter: 1 });
    }
    const reply = parseReply<C['type']>(raw);
    if (!reply.ok) throw replyError(reply.error);
    return reply.value;
  }

  /**
   * On worker `workerID`: reads its inbox until `signal` aborts and runs each command's handler,
   * replying with its result or error. Resolves on abort; rejects when the inbox is gone (the
   * worker was reaped) or Redis stays unreachable past `unavailableMs` (30 000).
   */
  async consume(workerID: string, handlers: CommandHandlers, signal: AbortSignal, opts: { blockMs?: number; maxInFlight?: number; unavailableMs?: number } = {}): Promise<void> {
    const inbox = this.conn.key(`inbox:${workerID}`);
    const blockMs = opts.blockMs ?? 2000;
    const maxInFlight = opts.maxInFlight ?? 64;
    const unavailableMs = opts.unavailableMs ?? 30_000;
    await this.createGroup(inbox);
    /** Per session, the tail of its chain of handlers (its commands run in order). */
    const lanes = new Map<string, Promise<void>>();
    let inFlight = 0;
    let freed: (() => void) | null = null;
    let downSince: number | null = null;
    while (!signal.aborted) {
      if (inFlight >= maxInFlight) {
        await new Promise<void>((r) => (freed = r));
        continue;
      }
      let entries: InboxEntry[] | null;
      try {
        entries = await this.read(inbox, maxInFlight - inFlight, blockMs, signal);
        downSince = null;
      } catch (err) {
        if (signal.aborted) break;
        const message = err instanceof Error ? err.message : String(err);
        if (message.startsWith('NOGROUP')) throw new Error(`inbox of worker ${workerID} is gone (the worker was reaped): ${message}`);
        downSince ??= Date.now();
        if (Date.now() - downSince > unavailableMs) throw err;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const e of entries ?? []) {
        const lane = e.command ? JSON.stringify([e.command.owner, e.command.session_id]) : e.id;
        inFlight++;
        const run = (lanes.get(lane) ?? Promise.resolve())
          .then(() => this.handle(inbox, e, handlers))
          .catch(() => {
            // handle() replies with every error it can; what is left is Redis failing the reply, which the sender's deadline covers.
          })
          .finally(() => {
            inFlight--;
            if (lanes.get(lane) === run) lanes.delete(lane);
            const f = freed;
            freed = null;
            f?.();
          });
        lanes.set(lane, run);
      }
    }
    await Promise.all(lanes.values());
  }

  private async handle(inbox: string, e: InboxEntry, handlers: CommandHandlers): Promise<void> {
    // The sender gave up (it answered SANDBOX_UNAVAILABLE): do not start what it was told failed.
    const expired = Date.now() > e.sentAt + e.waitMs;
    if (!expired) {
      let reply: CommandReply<CommandType>;
      if (!e.command) reply = errorReply(new ApiError('INTERNAL', `malformed worker command: ${e.invalid}`));
      else {
        try {
          reply = { ok: true, value: await dispatch(handlers, e.command) };
        } catch (err) {
          reply = errorReply(err);
        }
      }
      const key = this.conn.key(`reply:${e.requestID}`);
      await this.conn.writer.multi().lpush(key, JSON.stringify(reply)).pexpire(key, REPLY_TTL_MS).exec();
    }
    await this.conn.writer.multi().xack(inbox, GROUP, e.id).xdel(inbox, e.id).exec();
  }

  private async createGroup(inbox: string): Promise<void> {
    try {
      // From the start of the stream: commands sent between registration and this call count.
      await this.conn.writer.xgroup('CREATE', inbox, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('BUSYGROUP')) throw err;
    }
    if ((await this.conn.writer.pttl(inbox)) < 0) await this.conn.writer.pexpire(inbox, INBOX_TTL_MS);
  }

  /** One XREADGROUP BLOCK on a lent connection; an abort disconnects it at once. */
  private async read(inbox: string, count: number, blockMs: number, signal: AbortSignal): Promise<InboxEntry[] | null> {
    return this.blocking(signal, async (client) => parseInbox(await client.call('XREADGROUP', 'GROUP', GROUP, CONSUMER, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', inbox, '>')));
  }

  /** BLPOP the reply until `deadline`; null when none came (or `signal` aborted). */
  private async waitReply(requestID: string, deadline: number, signal?: AbortSignal): Promise<string | null> {
    const key = this.conn.key(`reply:${requestID}`);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return null;
      // BLPOP takes seconds (decimals allowed); 0 would mean for ever.
      const r = await this.blocking(signal, (client) => client.call('BLPOP', key, Math.max(0.01, left / 1000).toFixed(3)));
      if (Array.isArray(r) && typeof r[1] === 'string') return r[1];
    }
  }

  private async blocking<T>(signal: AbortSignal | undefined, op: (client: Redis) => Promise<T>): Promise<T | null> {
    let client: Redis;
    try {
      client = await this.conn.blocking.acquire(signal);
    } catch (err) {
      if (signal?.aborted) return null;
      throw err;
    }
    const onAbort = (): void => client.disconnect();
    signal?.addEventListener('abort', onAbort, { once: true });
    let broken = false;
    try {
      if (signal?.aborted) return null;
      return await op(client);
    } catch (err) {
      broken = true;
      if (signal?.aborted) return null;
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.conn.blocking.release(client, broken || (signal?.aborted ?? false));
    }
  }
}

/** One inbox entry: the command, or why it could not be read. */
interface InboxEntry {
  id: string;
  requestID: string;
  /** Redis time of the XADD (the entry id's first part), ms. */
  sentAt: number;
  waitMs: number;
  command: WorkerCommand | null;
  invalid: string;
}

/** XREADGROUP's reply for one stream: `[[key, [[id, [field, value, …]], …]]]`, or null on timeout. */
function parseInbox(reply: unknown): InboxEntry[] | null {
  if (!Array.isArray(reply)) return null;
  const first: unknown = reply[0];
  if (!Array.isArray(first) || !Array.isArray(first[1])) return null;
  const out: InboxEntry[] = [];
  for (const item of first[1] as unknown[]) {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) continue;
    const id = item[0];
    const f = new Map<string, string>();
    const fields = item[1] as unknown[];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const k = fields[i];
      const v = fields[i + 1];
      if (typeof k === 'string' && typeof v === 'string') f.set(k, v);
    }
    let command: WorkerCommand | null = null;
    let invalid = '';
    try {
      command = parseWorkerCommand(f.get('c') ?? '');
    } catch (err) {
      invalid = err instanceof Error ? err.message : String(err);
    }
    out.push({ id, requestID: f.get('r') ?? '', sentAt: Number(id.slice(0, id.indexOf('-'))), waitMs: Number(f.get('t') ?? 0), command, invalid });
  }
  return out;
}

function parseReply<T extends CommandType>(raw: string): CommandReply<T> {
  const v: unknown = JSON.parse(raw);
  if (typeof v === 'object' && v !== null && 'ok' in v) {
    // The worker built it from CommandReply (inbox.ts on both ends).
    return v as CommandReply<T>;
  }
  return { ok: false, error: { code: 'INTERNAL', message: 'the worker sent a malformed reply' } };
}
