/**
 * Commands to one worker, each run at most once: untrusted code never runs twice, so a command
 * is never redelivered, retried, or handed to another worker.
 *
 * Keys (RedisConnection.key):
 *   - `inbox:<wid>`: a stream with one consumer group (`g`). The sender XADDs (only while the
 *     worker's lease holds, in one script) an entry `r` = request id, `c` = the command's JSON,
 *     `d` = the sender's deadline in Redis time (ms; the script's TIME + the sender's wait). The
 *     worker reads with XREADGROUP `>` only, never its pending list, so an entry read by a worker
 *     that died before answering is never read again; it replies, then XACK + XDEL. TTL renewed
 *     by the worker's heartbeat (cluster-registry.ts); the reaper deletes a dead worker's inbox.
 *   - `cmd:<request id>`: the start/abandon handshake, `started` or `abandoned`, set once (NX
 *     in a script), PX the wait + 60 s. The worker sets `started` before the handler runs, only
 *     if the key is absent and Redis's clock has not passed `d`; a sender whose wait ended sets
 *     `abandoned` only if the key is absent. Exactly one wins, so a command the sender was told
 *     failed ("retry") never starts, and one that started is never reported as failed.
 *   - `reply:<request id>`: a list the worker LPUSHes its reply to, PEXPIRE 30 s; the sender
 *     waits with BLPOP on a connection of its own (BlockingPool), until its deadline.
 *
 * A sender whose wait ends abandons the command: SANDBOX_UNAVAILABLE (retry) when that worked;
 * when the worker had started it, the sender waits for its reply a while longer, then throws
 * OutcomeUnknown (no Retry-After: it may have run). No clock but Redis's is compared with
 * another. One session's commands are handled in order (a run before its stdin); different
 * sessions' at once, at most `maxInFlight` in all.
 */
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { dispatch, errorReply, parseWorkerCommand, replyError, type CommandHandlers, type CommandReply, type CommandResults, type CommandType, type WorkerCommand } from './commands.js';
import { within, type RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';
import { randomBase64url } from '@sluice/sandbox';

const GROUP = 'g';
const CONSUMER = 'w';
/** How long a reply waits for its sender, ms. */
const REPLY_TTL_MS = 30_000;
/** Entries an inbox keeps at most (roughly): a worker that stopped reading cannot grow it without bound. */
const MAX_INBOX = 10_000;
/** TTL of an inbox a sender created before its worker renewed it (the heartbeat sets the real one). */
const INBOX_TTL_MS = 24 * 3600 * 1000;
/** How long the handshake key outlives the sender's wait, ms (past `d`, the worker refuses by the clock anyway). */
const HANDSHAKE_EXTRA_MS = 60_000;
/** How long a sender tries to record that it abandoned a command, ms. */
export const ABANDON_MS = 3000;
/** How much longer than its own timeout a BLPOP may take before its connection counts as stuck. */
const BLPOP_GRACE_MS = 250;
/** One handshake call's bound, ms. */
const CALL_MS = 1000;

const NOW = `local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/** KEYS: lease, inbox. ARGV: request id, command JSON, wait ms. Returns 1, or 0 when the worker's lease is gone. */
const SEND = `
${NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ${MAX_INBOX}, '*', 'r', ARGV[1], 'c', ARGV[2], 'd', now() + tonumber(ARGV[3]))
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ${INBOX_TTL_MS}) end
return 1
`;

/**
 * The worker's side of the handshake. KEYS: cmd. ARGV: deadline (Redis ms), ttl ms.
 * Returns 'ok' (start it), 'late' (past the deadline: now abandoned), or the key's value.
 */
const START = `
${NOW}
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
if now() > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 'abandoned', 'PX', ARGV[2])
  return 'late'
end
redis.call('SET', KEYS[1], 'started', 'PX', ARGV[2])
return 'ok'
`;

/** The sender's side. KEYS: cmd. ARGV: ttl ms. Returns 'abandoned' (now or before) or 'started'. */
const ABANDON = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], 'abandoned', 'PX', ARGV[1])
return 'abandoned'
`;

/**
 * SANDBOX_UNAVAILABLE for a command that may have run: the worker started it (or the sender could
 * not make sure it never will) and did not answer. No Retry-After: a retry could run it twice.
 * `executionID` is the run's, when the command was a run.
 */
export class OutcomeUnknown extends ApiError {
  constructor(
    message: string,
    readonly executionID?: string,
  ) {
    super('SANDBOX_UNAVAILABLE', message);
  }
}

/** Sends commands to workers and, on a worker, consumes its own. */
export class Inbox {
  constructor(private readonly conn: RedisConnection) {}

  /**
   * Sends `command` to worker `workerID` and resolves with its result, or rejects with the
   * worker's ApiError. SANDBOX_UNAVAILABLE with Retry-After when the worker is not alive or the
   * command was abandoned unstarted after `timeoutMs` (10 000): it never runs. OutcomeUnknown
   * when it started and gave no reply within `startedWaitMs` more (default `timeoutMs`), or its
   * abandonment could not be recorded. At most `timeoutMs` + ABANDON_MS + `startedWaitMs` in all.
   */
  async send<C extends WorkerCommand>(workerID: string, command: C, opts: { timeoutMs?: number; startedWaitMs?: number; signal?: AbortSignal } = {}): Promise<CommandResults[C['type']]> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const requestID = randomBase64url(12);
    let sent: unknown;
    try {
      sent = await within(timeoutMs, this.conn.writer, () =>
        runScript(this.conn.writer, SEND, [this.conn.key(`lease:${workerID}`), this.conn.key(`inbox:${workerID}`)], [requestID, JSON.stringify(command), timeoutMs]),
      );
    } catch (err) {
      // The XADD may have been made with its answer lost: the handshake decides, as for a timeout.
      return this.abandoned(requestID, command, timeoutMs, opts, `could not be sent (${err instanceof Error ? err.message : String(err)})`);
    }
    if (sent !== 1) throw new ApiError('SANDBOX_UNAVAILABLE', `the worker of this session is gone (${command.type} not sent); retry`, { retryAfter: 1 });
    // Sent: from here on only the handshake may say "retry", whatever fails while waiting.
    let raw: string | null;
    try {
      raw = await this.waitReply(requestID, deadline, opts.signal);
    } catch (err) {
      return this.abandoned(requestID, command, timeoutMs, opts, `could not be waited for (${err instanceof Error ? err.message : String(err)})`);
    }
    if (raw !== null) return unwrap<C>(raw);
    return this.abandoned(requestID, command, timeoutMs, opts, `was not answered within ${timeoutMs} ms`);
  }

  /** The sender's wait ended without a reply: abandon the command, or wait for it if it started. */
  private async abandoned<C extends WorkerCommand>(requestID: string, command: C, timeoutMs: number, opts: { startedWaitMs?: number; signal?: AbortSignal }, why: string): Promise<CommandResults[C['type']]> {
    const state = await this.abandon(requestID, timeoutMs);
    if (state === 'abandoned') {
      opts.signal?.throwIfAborted();
      throw new ApiError('SANDBOX_UNAVAILABLE', `the worker did not start ${command.type} in time (it ${why}; it may be overloaded or have died); it will not run; retry`, { retryAfter: 1 });
    }
    if (state === 'started') {
      const raw = await this.waitReply(requestID, Date.now() + (opts.startedWaitMs ?? timeoutMs), opts.signal).catch(() => null);
      if (raw !== null) return unwrap<C>(raw);
    }
    const executionID = command.type === 'run' ? command.execution_id : undefined;
    const which = executionID ? ` (execution ${executionID}: GET /api/executions/${executionID} tells)` : command.type === 'agent' ? ` (agent run ${command.run_id}: GET /api/agent-runs/${command.run_id} tells)` : '';
    throw new OutcomeUnknown(`the worker ${state === 'started' ? 'started' : 'may have started'} ${command.type} but did not answer${which}; do not simply retry, it may have run`, executionID);
  }

  /** Records that the sender gave up, unless the worker started first; null when Redis would not say. */
  private async abandon(requestID: string, timeoutMs: number): Promise<'abandoned' | 'started' | null> {
    const key = this.conn.key(`cmd:${requestID}`);
    const until = Date.now() + ABANDON_MS;
    for (let wait = 25; ; wait = Math.min(wait * 2, 400)) {
      try {
        const r = await within(Math.min(CALL_MS, Math.max(1, until - Date.now())), this.conn.writer, () => runScript(this.conn.writer, ABANDON, [key], [timeoutMs + HANDSHAKE_EXTRA_MS]));
        if (r === 'abandoned' || r === 'started') return r;
        return null;
      } catch {
        if (Date.now() + wait >= until) return null;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
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
    try {
      let reply: CommandReply<CommandType> | null = null;
      if (!e.command) reply = errorReply(new ApiError('INTERNAL', `malformed worker command: ${e.invalid}`));
      // Nothing runs unless the handshake says the sender still waits (and then it never gives up on it).
      else if ((await this.start(e)) === 'ok') {
        try {
          reply = { ok: true, value: await dispatch(handlers, e.command) };
        } catch (err) {
          reply = errorReply(err);
        }
      }
      if (reply) {
        const key = this.conn.key(`reply:${e.requestID}`);
        await this.conn.writer.multi().lpush(key, JSON.stringify(reply)).pexpire(key, REPLY_TTL_MS).exec();
      }
    } finally {
      await this.conn.writer.multi().xack(inbox, GROUP, e.id).xdel(inbox, e.id).exec();
    }
  }

  /** The worker's half of the handshake: 'ok' to start; anything else (or Redis failing) skips the command. */
  private async start(e: InboxEntry): Promise<string> {
    if (!Number.isFinite(e.deadline)) return 'late';
    const r = await within(CALL_MS * 5, this.conn.writer, () => runScript(this.conn.writer, START, [this.conn.key(`cmd:${e.requestID}`)], [e.deadline, HANDSHAKE_EXTRA_MS * 2]));
    return typeof r === 'string' ? r : 'late';
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
      // Bounded past its own timeout: a half-open or paused connection must not outwait the deadline.
      const r = await this.blocking(signal, (client) => within(left + BLPOP_GRACE_MS, client, () => client.call('BLPOP', key, Math.max(0.01, left / 1000).toFixed(3))));
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
  /** The sender's deadline, Redis time, ms (NaN when missing). */
  deadline: number;
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
    out.push({ id, requestID: f.get('r') ?? '', deadline: Number(f.get('d') ?? NaN), command, invalid });
  }
  return out;
}

/** The worker's reply as the result, or its error thrown. */
function unwrap<C extends WorkerCommand>(raw: string): CommandResults[C['type']] {
  const reply = parseReply<C['type']>(raw);
  if (!reply.ok) throw replyError(reply.error);
  return reply.value;
}

function parseReply<T extends CommandType>(raw: string): CommandReply<T> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    v = null;
  }
  if (typeof v === 'object' && v !== null) {
    const r = v as Record<string, unknown>;
    // The value's shape is the handler's (CommandResults[T], inbox.ts on both ends); the envelope is checked.
    if (r['ok'] === true && typeof r['value'] === 'object' && r['value'] !== null) return { ok: true, value: r['value'] as CommandResults[T] };
    const e = r['error'];
    if (r['ok'] === false) return errorReply(replyError(e));
  }
  return { ok: false, error: { code: 'INTERNAL', message: 'the worker sent a malformed reply' } };
}
