/**
 * Admission caps counted in Redis, so that every API node enforces the same ones: sessions per
 * owner and in total (counted from session-registry's indexes, checked atomically by its claim),
 * and sandbox slots per owner and in total. The limits and messages are SessionManager's.
 *
 * A slot is what SessionManager counts as running: a session with at least one execution queued
 * or running holds one slot, however many it has queued. Keys (RedisConnection.key):
 *   - `running`: ZSET of `[owner, sid]`, the sessions holding a slot; `running:<o>`: the owner's,
 *     members = session ids. Score = when the slot lapses (Redis ms) unless renewed: a node that
 *     died between acquire and release cannot keep a slot for ever.
 *   - `slot:<o>:<sid>`: how many executions the session has queued or running (acquire +1,
 *     release −1; at 0 the slot is freed and the key deleted), PX = `slotTTLMs`.
 * The reaper frees a dead worker's sessions' slots with releaseSession.
 */
import { ApiError } from '../api-error.js';
import { sessionMember } from './cluster-registry.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

/** The session caps (ServerConfig's fields of the same names). */
export interface SessionCaps {
  maxSessions: number;
  maxSessionsPerTenant: number;
}

/** The sandbox caps (ServerConfig's fields of the same names). */
export interface RunCaps {
  maxRunning: number;
  maxRunningPerTenant: number;
}

/** RATE_LIMITED for a new session past a cap, as SessionManager words it. */
export function sessionCapError(which: 'total' | 'tenant', n: number): ApiError {
  if (which === 'total') return new ApiError('RATE_LIMITED', `the server has ${n} sessions, its maximum (SLUICE_MAX_SESSIONS); retry later`, { retryAfter: 5 });
  return new ApiError(
    'RATE_LIMITED',
    `this API key already has ${n} sessions, its maximum (SLUICE_MAX_SESSIONS_PER_TENANT); delete one (DELETE /api/sessions/{id}) or let one expire`,
    { retryAfter: 5 },
  );
}

/** RATE_LIMITED for a run that needs a slot past a cap, as SessionManager words it. */
export function runCapError(which: 'total' | 'tenant', n: number): ApiError {
  if (which === 'total') {
    return new ApiError('RATE_LIMITED', `the server is running ${n} sandboxes, its maximum (SLUICE_MAX_RUNNING); retry when one has finished`, { retryAfter: 1 });
  }
  return new ApiError(
    'RATE_LIMITED',
    `this API key already has ${n} sandboxes running, its maximum (SLUICE_MAX_RUNNING_PER_TENANT); wait for one to finish or cancel one`,
    { retryAfter: 1 },
  );
}

const NOW = `local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/**
 * KEYS: running, running:<o>, slot. ARGV: member, sid, max total, max per owner (0 = none),
 * slot ttl ms, take (1: count one more execution; 0: only check).
 * Returns {'ok', executions} | {'total', n} | {'tenant', n}.
 */
const ACQUIRE = `
${NOW}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n == 0 or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  n = 0
  local total = redis.call('ZCARD', KEYS[1])
  if total >= tonumber(ARGV[3]) then return {'total', total} end
  local mine = redis.call('ZCARD', KEYS[2])
  if tonumber(ARGV[4]) > 0 and mine >= tonumber(ARGV[4]) then return {'tenant', mine} end
end
if ARGV[6] ~= '1' then return {'ok', n} end
local ttl = tonumber(ARGV[5])
n = n + 1
redis.call('SET', KEYS[3], n, 'PX', ttl)
redis.call('ZADD', KEYS[1], t + ttl, ARGV[1])
redis.call('ZADD', KEYS[2], t + ttl, ARGV[2])
for i = 1, 2 do if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end end
return {'ok', n}
`;

/**
 * KEYS: running, running:<o>, slot. ARGV: member, sid, all (1: free the slot whatever the count).
 * Returns the executions still counted (0: the slot is free).
 */
const RELEASE = `
local n = tonumber(redis.call('GET', KEYS[3]) or '0') - 1
if ARGV[3] == '1' or n <= 0 then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
end
redis.call('SET', KEYS[3], n, 'KEEPTTL')
return n
`;

/** The caps of every node, counted in one Redis. */
export class Admission {
  private readonly slotTTLMs: number;

  constructor(
    private readonly conn: RedisConnection,
    private readonly caps: RunCaps & SessionCaps,
    opts: {
      /** How long a slot lasts unless a new execution of its session renews it, ms: longer than any queue and run. 6 h. */
      slotTTLMs?: number;
    } = {},
  ) {
    this.slotTTLMs = opts.slotTTLMs ?? 6 * 3600 * 1000;
  }

  /** The session caps, for SessionRegistry.claim (which checks them atomically with the creation). */
  get sessionCaps(): SessionCaps {
    return { maxSessions: this.caps.maxSessions, maxSessionsPerTenant: this.caps.maxSessionsPerTenant };
  }

  /** Refuses early (RATE_LIMITED) a session that would not fit now; claim checks again, atomically. */
  async checkSession(owner: string | null): Promise<void> {
    const o = this.conn.ownerPart(owner);
    const r = (await this.conn.reader.multi().zcount(this.conn.key('sessions'), '(' + String(Date.now()), '+inf').zcount(this.conn.key(`sessions:${o}`), '(' + String(Date.now()), '+inf').exec()) ?? [];
    const total = Number(r[0]?.[1] ?? 0);
    const mine = Number(r[1]?.[1] ?? 0);
    if (total >= this.caps.maxSessions) throw sessionCapError('total', total);
    if (owner !== null && mine >= this.caps.maxSessionsPerTenant) throw sessionCapError('tenant', mine);
  }

  /**
   * Counts one more execution of the session: free when the session holds a slot already, else
   * a new slot if one is free server-wide and for the owner, else RATE_LIMITED. Every acquire
   * needs one release (when the execution ends, or fails to start).
   */
  async acquireRun(owner: string | null, sessionID: string): Promise<void> {
    await this.slot(owner, sessionID, true);
  }

  /** Refuses early (RATE_LIMITED) a run that would need a slot none is free for; takes nothing. */
  async checkRun(owner: string | null, sessionID: string): Promise<void> {
    await this.slot(owner, sessionID, false);
  }

  /** One execution of the session ended: its slot is freed with the last. */
  async releaseRun(owner: string | null, sessionID: string): Promise<void> {
    await this.release(owner, sessionID, false);
  }

  /** Frees the session's slot whatever it counted (its worker died, or it was deleted). */
  async releaseSession(owner: string | null, sessionID: string): Promise<void> {
    await this.release(owner, sessionID, true);
  }

  /** Sessions holding a slot: in total, or the owner's. */
  async running(owner?: string | null): Promise<number> {
    const key = owner === undefined ? this.conn.key('running') : this.conn.key(`running:${this.conn.ownerPart(owner)}`);
    return this.conn.reader.zcount(key, `(${Date.now()}`, '+inf');
  }

  private async slot(owner: string | null, sessionID: string, take: boolean): Promise<void> {
    const k = this.keys(owner, sessionID);
    const r = (await runScript(this.conn.writer, ACQUIRE, [k.running, k.mine, k.slot], [
      sessionMember(owner, sessionID), sessionID, this.caps.maxRunning, owner === null ? 0 : this.caps.maxRunningPerTenant, this.slotTTLMs, take ? 1 : 0,
    ])) as [string, number];
    const [what, n] = r;
    if (what === 'total' || what === 'tenant') throw runCapError(what, Number(n));
  }

  private async release(owner: string | null, sessionID: string, all: boolean): Promise<void> {
    const k = this.keys(owner, sessionID);
    await runScript(this.conn.writer, RELEASE, [k.running, k.mine, k.slot], [sessionMember(owner, sessionID), sessionID, all ? 1 : 0]);
  }

  private keys(owner: string | null, sessionID: string): { running: string; mine: string; slot: string } {
    const o = this.conn.ownerPart(owner);
    return { running: this.conn.key('running'), mine: this.conn.key(`running:${o}`), slot: this.conn.key(`slot:${o}:${sessionID}`) };
  }
}
