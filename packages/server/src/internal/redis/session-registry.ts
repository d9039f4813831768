/**
 * Sessions and executions in Redis: which worker holds each session, its settings, and whose
 * each execution is, so that any API node can route a request and answer NOT_FOUND the same way.
 *
 * Keys (RedisConnection.key; `<o>` = ownerPart(owner)):
 *   - `session:<o>:<sid>`: hash: `worker`, `state` (`live` | `lost`), `settings` (JSON),
 *     `created`, `last_active` (ms), `incarnation` (random per claim: tells a re-created session
 *     from the one before), `ttl` (idle TTL ms). TTL = the idle TTL, renewed by touch.
 *   - `sessions:<o>`: ZSET of the owner's session ids, score = when each expires (Redis ms);
 *     `sessions`: the same over every owner (members `[owner, sid]` JSON), for the total cap.
 *     Expired members are pruned by every claim and list; the keys live as long as their longest member.
 *   - `worker:<wid>:sessions`: SET of `[owner, sid]`: the sessions a worker holds (the reaper reads
 *     it; cluster-registry renews and deletes it).
 *   - `exec:<eid>`, `run:<rid>`: hash `owner` (`-` when none), `session`, `worker` (and the
 *     worker's `meta`); TTL 24 h while it runs (WORK_LIVE_SEC), the log retention once its log
 *     closed (retainWork: by its worker, or the reaper that ended it).
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api-error.js';
import { sessionCapError, type SessionCaps } from './admission.js';
import { parseSessionMember, sessionMember } from './cluster-registry.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

export type SessionState = 'live' | 'lost';

/** A session as Redis holds it. */
export interface SessionRecord {
  owner: string | null;
  id: string;
  worker: string;
  state: SessionState;
  /** The settings JSON given to claim, parsed (the caller narrows it). */
  settings: unknown;
  createdAt: number;
  lastActiveAt: number;
  incarnation: string;
  idleTTLMs: number;
}

/** Whose an execution or agent run is, and where it runs. */
export interface WorkRecord {
  owner: string | null;
  sessionID: string;
  worker: string;
}

const NOW = `local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/** Sets `k`'s TTL to `ms` unless it already has a longer one (indexes must outlive their members). */
const EXTEND = `local function extend(k, ms) if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms) end end`;

/**
 * KEYS: session, owner index, all index, worker set. ARGV: sid, member, worker, settings, ttl ms,
 * incarnation, max total (0 = none), max per owner (0 = none).
 * Returns {'ok', now} | {'exists'} | {'total', n} | {'tenant', n}.
 */
const CLAIM = `
${NOW}
${EXTEND}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t)
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local total = redis.call('ZCARD', KEYS[3])
if tonumber(ARGV[7]) > 0 and total >= tonumber(ARGV[7]) then return {'total', total} end
local mine = redis.call('ZCARD', KEYS[2])
if tonumber(ARGV[8]) > 0 and mine >= tonumber(ARGV[8]) then return {'tenant', mine} end
local ttl = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'worker', ARGV[3], 'state', 'live', 'settings', ARGV[4], 'created', t, 'last_active', t, 'incarnation', ARGV[6], 'ttl', ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], t + ttl, ARGV[1])
redis.call('ZADD', KEYS[3], t + ttl, ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
extend(KEYS[2], ttl)
extend(KEYS[3], ttl)
extend(KEYS[4], ttl)
return {'ok', t}
`;

/** KEYS: session, owner index, all index. ARGV: sid, member. Returns the Redis time it set, or 0 when the session is gone. */
const TOUCH = `
${NOW}
${EXTEND}
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
if not ttl then return 0 end
local t = now()
redis.call('HSET', KEYS[1], 'last_active', t)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], t + ttl, ARGV[1])
redis.call('ZADD', KEYS[3], t + ttl, ARGV[2])
extend(KEYS[2], ttl)
extend(KEYS[3], ttl)
return t
`;

/** KEYS: owner index, all index. Returns the owner's live session ids. */
const LIST = `
${NOW}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/** KEYS: the sessions of a dead worker. ARGV: worker id. Sets `state` lost on each that is still its. */
const MARK_LOST = `
local n = 0
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'worker') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'state', 'lost')
    n = n + 1
  end
end
return n
`;

/** How long an execution's record lives while it runs, s: past any run (SLUICE_MAX_TIMEOUT) and queue; 24 h. */
export const WORK_LIVE_SEC = 24 * 3600;

/** Session and execution records over one RedisConnection. */
export class SessionRegistry {
  constructor(private readonly conn: RedisConnection) {}

  /**
   * Creates the session on `worker`, atomically with the caps when given: INVALID_REQUEST when
   * it exists, RATE_LIMITED (admission.ts's messages) past a cap. Resolves with the record.
   */
  async claim(owner: string | null, id: string, worker: string, settings: unknown, opts: { idleTTLMs: number; caps?: SessionCaps }): Promise<SessionRecord> {
    const k = this.keys(owner, id, worker);
    const incarnation = randomBytes(9).toString('base64url');
    const settingsJSON = JSON.stringify(settings);
    const ttl = Math.ceil(opts.idleTTLMs);
    const caps = opts.caps;
    const r = (await runScript(this.conn.writer, CLAIM, [k.session, k.owned, k.all, k.worker], [
      id, sessionMember(owner, id), worker, settingsJSON, ttl, incarnation,
      caps?.maxSessions ?? 0, owner === null ? 0 : (caps?.maxSessionsPerTenant ?? 0),
    ])) as [string, number?];
    const [what, n] = r;
    switch (what) {
      case 'ok': {
        const t = Number(n);
        return { owner, id, worker, state: 'live', settings: JSON.parse(settingsJSON) as unknown, createdAt: t, lastActiveAt: t, incarnation, idleTTLMs: ttl };
      }
      case 'exists':
        throw new ApiError('INVALID_REQUEST', `id: a session named ${JSON.stringify(id)} already exists; delete it first or choose another id`);
      case 'total':
        throw sessionCapError('total', Number(n));
      case 'tenant':
        throw sessionCapError('tenant', Number(n));
      default:
        throw new Error(`unexpected claim reply ${JSON.stringify(r)}`);
    }
  }

  /** The session, or null (none, expired, or another owner's). */
  async get(owner: string | null, id: string): Promise<SessionRecord | null> {
    const h = await this.conn.reader.hgetall(this.keys(owner, id).session);
    return parseSession(owner, id, h);
  }

  /** The owner's sessions (live and lost), oldest id order as Redis sorts them (by expiry). */
  async list(owner: string | null): Promise<SessionRecord[]> {
    const k = this.keys(owner, '');
    const ids = (await runScript(this.conn.writer, LIST, [k.owned, k.all], [])) as string[];
    const tx = this.conn.reader.pipeline();
    for (const id of ids) tx.hgetall(this.keys(owner, id).session);
    const replies = (await tx.exec()) ?? [];
    const out: SessionRecord[] = [];
    ids.forEach((id, i) => {
      const v = replies[i]?.[1];
      const s = v && typeof v === 'object' ? parseSession(owner, id, v as Record<string, string>) : null;
      if (s) out.push(s);
    });
    return out;
  }

  /** Renews the idle TTL (activity); the Redis time it set `last_active` to, or null when the session is gone. */
  async touch(owner: string | null, id: string): Promise<number | null> {
    const k = this.keys(owner, id);
    const t = Number(await runScript(this.conn.writer, TOUCH, [k.session, k.owned, k.all], [id, sessionMember(owner, id)]));
    return t > 0 ? t : null;
  }

  /** Forgets the session (deleted, or its worker destroyed it). */
  async remove(owner: string | null, id: string): Promise<void> {
    const s = await this.get(owner, id);
    const k = this.keys(owner, id, s?.worker ?? '');
    const tx = this.conn.writer.multi().del(k.session).zrem(k.owned, id).zrem(k.all, sessionMember(owner, id));
    if (s) tx.srem(k.worker, sessionMember(owner, id));
    await tx.exec();
  }

  /**
   * Marks every session of a dead worker `lost` (kept until its idle TTL, so the next request
   * on it says so clearly); resolves with them as `[owner, id]`.
   */
  async markLost(workerID: string, sessions?: [string | null, string][]): Promise<[string | null, string][]> {
    const list = sessions ?? (await this.conn.reader.smembers(this.keys(null, '', workerID).worker)).map(parseSessionMember);
    if (list.length === 0) return [];
    await runScript(this.conn.writer, MARK_LOST, list.map(([o, id]) => this.keys(o, id).session), [workerID]);
    return list;
  }

  /**
   * Records an execution (`kind` exec) or agent run (`run`). It lives `liveSec` (WORK_LIVE_SEC)
   * while it runs, however long that is, then as long as its log (retainWork).
   */
  async addWork(kind: 'exec' | 'run', id: string, rec: WorkRecord, liveSec: number = WORK_LIVE_SEC): Promise<void> {
    const key = this.conn.key(`${kind}:${id}`);
    await this.conn.writer.multi().hset(key, 'owner', this.conn.ownerPart(rec.owner), 'session', rec.sessionID, 'worker', rec.worker).pexpire(key, Math.ceil(liveSec * 1000)).exec();
  }

  /** The work never started (refused, or abandoned before it started): its record goes at once. */
  async dropWork(kind: 'exec' | 'run', id: string): Promise<void> {
    await this.conn.writer.del(this.conn.key(`${kind}:${id}`));
  }

  /** Its log closed: the record now lives as long as the log, `retentionSec`. */
  async retainWork(kind: 'exec' | 'run', id: string, retentionSec: number): Promise<void> {
    await this.conn.writer.pexpire(this.conn.key(`${kind}:${id}`), Math.ceil(retentionSec * 1000));
  }

  /** The execution, or NOT_FOUND (also when another owner asks: the same answer as a missing one). */
  async execution(owner: string | null, id: string): Promise<WorkRecord> {
    const r = await this.work('exec', owner, id);
    if (!r) throw new ApiError('NOT_FOUND', `no execution with id ${JSON.stringify(id)}`);
    return r;
  }

  /** The agent run, or NOT_FOUND likewise. */
  async agentRun(owner: string | null, id: string): Promise<WorkRecord> {
    const r = await this.work('run', owner, id);
    if (!r) throw new ApiError('NOT_FOUND', `no agent run with id ${JSON.stringify(id)}`);
    return r;
  }

  private async work(kind: 'exec' | 'run', owner: string | null, id: string): Promise<WorkRecord | null> {
    const [o, session, worker] = await this.conn.reader.hmget(this.conn.key(`${kind}:${id}`), 'owner', 'session', 'worker');
    if (o !== this.conn.ownerPart(owner) || !session || !worker) return null;
    return { owner, sessionID: session, worker };
  }

  private keys(owner: string | null, id: string, worker = ''): { session: string; owned: string; all: string; worker: string } {
    const o = this.conn.ownerPart(owner);
    return {
      session: this.conn.key(`session:${o}:${id}`),
      owned: this.conn.key(`sessions:${o}`),
      all: this.conn.key('sessions'),
      worker: this.conn.key(`worker:${worker}:sessions`),
    };
  }
}

function parseSession(owner: string | null, id: string, h: Record<string, string>): SessionRecord | null {
  const { worker, state, settings, created, last_active: lastActive, incarnation, ttl } = h;
  if (worker === undefined || settings === undefined || incarnation === undefined) return null;
  return {
    owner,
    id,
    worker,
    state: state === 'lost' ? 'lost' : 'live',
    settings: JSON.parse(settings) as unknown,
    createdAt: Number(created),
    lastActiveAt: Number(lastActive),
    incarnation,
    idleTTLMs: Number(ttl),
  };
}
