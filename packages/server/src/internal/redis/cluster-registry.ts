/**
 * Workers and their leases, in Redis: which workers are alive, how loaded each is, and what a
 * dead one leaves behind to end.
 *
 * Keys (RedisConnection.key; `<wid>` is the worker's random id):
 *   - `workers`: ZSET of worker ids, score = when the lease runs out (Redis time, ms).
 *   - `lease:<wid>`: the lease, value = the worker's token, `SET PX leaseMs`; gone = dead.
 *   - `worker:<wid>`: hash: `url` (internal endpoint), `token` (its access token), `sessions`,
 *     `running` (its load), `started` (ms), `draining` (`1` once it drains: placed nothing more).
 *   - `worker:<wid>:running`, `worker:<wid>:agents`: SETs of the execution and agent run ids it
 *     is running (markRunning / markFinished), so that whoever reaps it knows what to end.
 *   - `reap:<wid>`: `SET NX PX` by the one node that reaps it.
 * Every heartbeat renews the lease and sets `orphanTTLMs` (24 h) on the worker's other keys
 * (these and session-registry's and inbox's `worker:<wid>:sessions`, `inbox:<wid>`), so they outlive
 * the lease until a reaper deletes them, and expire on their own if none ever does.
 *
 * Fencing: a worker counts its lease from the moment it SENT its last successful renewal, and
 * fences at FENCE_FRACTION (0.7) of it; when that passes without a renewal (Redis paused,
 * unreachable, or the lease was reaped), `onLeaseLost` fires once and the worker must kill its
 * sandboxes itself. A reaper acts only once Redis's lease has been gone for REAP_GRACE (half a
 * lease) more, so the worker has had 0.9 of a lease to stop its code before anyone ends its runs.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api-error.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

/** A live worker as API nodes see it. */
export interface WorkerInfo {
  id: string;
  /** Its internal endpoint (SLUICE_WORKER_URL). */
  url: string;
  /** What API nodes present to its internal endpoint. */
  token: string;
  sessions: number;
  running: number;
}

/** What a dead worker leaves: what its reaper must end (then the registry deletes its keys). */
export interface DeadWorker {
  id: string;
  /** Execution ids it was running: each log gets `done` with `reason: "sandbox_lost"`. */
  executions: string[];
  /** Agent run ids it was running, likewise. */
  agentRuns: string[];
  /** Its sessions as `[owner, session id]` (session-registry's index; mark them lost). */
  sessions: [string | null, string][];
}

/** Timings of the registry (tests make them small). */
export interface ClusterRegistryOptions {
  /** How long a lease lasts without renewal, ms. 5000. */
  leaseMs?: number;
  /** How long a reaper's claim on a dead worker lasts: past it, another node may retry, ms. 60 000. */
  reapClaimMs?: number;
  /** TTL of a worker's keys besides its lease, renewed by each heartbeat, ms. 24 h. */
  orphanTTLMs?: number;
}

/** How a worker registers. */
export interface RegisterOptions {
  /** Its internal endpoint, as API nodes dial it. */
  url: string;
  /** Between heartbeats, ms. 1000. */
  heartbeatMs?: number;
  /** Told once when the lease is lost: the worker must kill its sandboxes now. */
  onLeaseLost: (why: string) => void;
  /** Told about a heartbeat that failed (the lease may still hold). */
  onError?: (err: Error) => void;
}

/** Of its lease, how much a worker waits without a renewal before it fences itself. */
const FENCE_FRACTION = 0.7;
/** Of a lease, how long a reaper waits past its expiry before it reaps. */
const REAP_GRACE = 0.5;

/** Current Redis time in ms (Lua), so that no node's clock matters. */
const NOW = `local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/**
 * Registers (fails if the id is taken) or renews. KEYS: lease, worker, workers, running, agents,
 * sessions, inbox. ARGV: id, token, lease ms, orphan ttl ms, create (1/0), url, sessions, running.
 * Returns 1, or 0 when renewing a lease that is gone or not ours.
 */
const HEARTBEAT = `
${NOW}
if ARGV[5] == '1' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) == false then return redis.error_reply('SLUICE_EXISTS worker id taken') end
  redis.call('HSET', KEYS[2], 'url', ARGV[6], 'token', ARGV[2], 'started', now())
else
  if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('HSET', KEYS[2], 'sessions', ARGV[7], 'running', ARGV[8])
redis.call('ZADD', KEYS[3], now() + tonumber(ARGV[3]), ARGV[1])
for i = 2, 7 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return 1
`;

/** Worker ids whose lease ran out at least `grace` ago. KEYS: workers. ARGV: grace ms. */
const EXPIRED = `
${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now() - tonumber(ARGV[1]))
`;

/**
 * Places a session: the live worker, not draining, with the fewest running executions (as last
 * reported), then the fewest sessions (its session set, which this script adds the session to
 * at once, so the next placement counts it), ties broken by ARGV[3]. KEYS: workers. ARGV: key
 * prefix, session member, random in [0, 1). Returns {id, added (1/0)}, or false when none.
 */
const PICK = `
${NOW}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now(), '+inf')
local best, br, bs = {}, nil, nil
for _, id in ipairs(ids) do
  local w = ARGV[1] .. 'worker:' .. id
  local h = redis.call('HMGET', w, 'url', 'draining', 'running')
  if h[1] and h[2] ~= '1' then
    local r = tonumber(h[3] or '0') or 0
    local n = redis.call('SCARD', w .. ':sessions')
    if br == nil or r < br or (r == br and n < bs) then
      best, br, bs = {id}, r, n
    elseif r == br and n == bs then
      table.insert(best, id)
    end
  end
end
if #best == 0 then return false end
local pick = best[math.min(#best, math.floor(tonumber(ARGV[3]) * #best) + 1)]
return {pick, redis.call('SADD', ARGV[1] .. 'worker:' .. pick .. ':sessions', ARGV[2])}
`;

/** Live worker ids. KEYS: workers. */
const LIVE = `
${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now(), '+inf')
`;

/**
 * Claims a dead worker for reaping. KEYS: lease, reap. ARGV: claimant, claim ms.
 * Returns 1 when this caller claimed it; 0 when its lease is back or another node holds the claim.
 */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return 0 end
return 1
`;

/** Workers, leases and reaping over one RedisConnection. */
export class ClusterRegistry {
  private readonly leaseMs: number;
  private readonly reapClaimMs: number;
  private readonly orphanTTLMs: number;
  private readonly node = randomBytes(6).toString('base64url');

  constructor(
    private readonly conn: RedisConnection,
    opts: ClusterRegistryOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? 5000;
    this.reapClaimMs = opts.reapClaimMs ?? 60_000;
    this.orphanTTLMs = opts.orphanTTLMs ?? 24 * 3600 * 1000;
  }

  /** The keys of worker `id` (session-registry and inbox name theirs with the same helpers). */
  workerKeys(id: string): { lease: string; worker: string; workers: string; running: string; agents: string; sessions: string; inbox: string; reap: string } {
    const k = (n: string): string => this.conn.key(n);
    return {
      lease: k(`lease:${id}`),
      worker: k(`worker:${id}`),
      workers: k('workers'),
      running: k(`worker:${id}:running`),
      agents: k(`worker:${id}:agents`),
      sessions: k(`worker:${id}:sessions`),
      inbox: k(`inbox:${id}`),
      reap: k(`reap:${id}`),
    };
  }

  /** Registers this process as a worker with a new id and starts its heartbeat; rejects when Redis does not answer. */
  async register(opts: RegisterOptions): Promise<WorkerLease> {
    const id = randomBytes(9).toString('base64url');
    const token = randomBytes(24).toString('base64url');
    const lease = new WorkerLease(this, this.conn, id, token, this.leaseMs, this.orphanTTLMs, opts);
    await lease.start();
    return lease;
  }

  /** The workers whose lease holds, with their load. */
  async liveWorkers(): Promise<WorkerInfo[]> {
    const ids = stringsOf(await runScript(this.conn.reader, LIVE, [this.conn.key('workers')], []));
    if (ids.length === 0) return [];
    const tx = this.conn.reader.pipeline();
    for (const id of ids) tx.hmget(this.workerKeys(id).worker, 'url', 'token', 'sessions', 'running');
    const replies = (await tx.exec()) ?? [];
    const out: WorkerInfo[] = [];
    ids.forEach((id, i) => {
      const [err, v] = replies[i] ?? [new Error('no reply'), null];
      if (err || !Array.isArray(v)) return;
      const [url, token, sessions, running] = v as (string | null)[];
      if (url == null || token == null) return;
      out.push({ id, url, token, sessions: Number(sessions ?? 0), running: Number(running ?? 0) });
    });
    return out;
  }

  /**
   * Places session `[owner, id]` (PICK): on the live worker, not draining, with the fewest running
   * executions, then sessions, ties at random; the session counts there at once (a burst spreads).
   * `added` is false when it was in that worker's set already. SANDBOX_UNAVAILABLE when none.
   */
  async pickWorker(owner: string | null, id: string): Promise<{ worker: WorkerInfo; added: boolean }> {
    const none = (): ApiError => new ApiError('SANDBOX_UNAVAILABLE', 'no worker is available to run sandboxes; retry shortly', { retryAfter: 1 });
    const r = await runScript(this.conn.writer, PICK, [this.conn.key('workers')], [this.conn.key(''), sessionMember(owner, id), Math.random()]);
    if (!Array.isArray(r) || typeof r[0] !== 'string') throw none();
    const worker = await this.worker(r[0]);
    if (!worker) throw none();
    return { worker, added: r[1] === 1 };
  }

  /** Undoes a placement whose session was not created (pickWorker's `added`). */
  async unplace(workerID: string, owner: string | null, id: string): Promise<void> {
    await this.conn.writer.srem(this.workerKeys(workerID).sessions, sessionMember(owner, id));
  }

  /** The worker `id` if its lease holds, else null. */
  async worker(id: string): Promise<WorkerInfo | null> {
    return (await this.liveWorkers()).find((w) => w.id === id) ?? null;
  }

  /**
   * Finds the workers whose lease ran out, claims each (`SET reap:<wid> NX PX`: exactly one node
   * gets it), lets `end` end what it left (logs, sessions, caps), then deletes its keys. When
   * `end` throws, the keys stay and another node retries after the claim runs out (ending a log
   * twice is harmless: endIfOpen). Resolves with the workers this call reaped.
   */
  async reapDeadWorkers(end: (dead: DeadWorker) => Promise<void>): Promise<DeadWorker[]> {
    const ids = stringsOf(await runScript(this.conn.reader, EXPIRED, [this.conn.key('workers')], [Math.ceil(this.leaseMs * REAP_GRACE)]));
    const reaped: DeadWorker[] = [];
    for (const id of ids) {
      const k = this.workerKeys(id);
      if ((await runScript(this.conn.writer, CLAIM, [k.lease, k.reap], [this.node, this.reapClaimMs])) !== 1) continue;
      const [executions, agentRuns, sessions] = await Promise.all([this.conn.reader.smembers(k.running), this.conn.reader.smembers(k.agents), this.conn.reader.smembers(k.sessions)]);
      const dead: DeadWorker = { id, executions, agentRuns, sessions: sessions.map(parseSessionMember) };
      await end(dead);
      await this.conn.writer.multi().zrem(k.workers, id).del(k.worker, k.running, k.agents, k.sessions, k.inbox).exec();
      reaped.push(dead);
    }
    return reaped;
  }

  /** Runs reapDeadWorkers every `everyMs` (1000) until `signal` aborts; errors go to `onError` and the next round retries. */
  startReaper(end: (dead: DeadWorker) => Promise<void>, signal: AbortSignal, opts: { everyMs?: number; onError?: (err: Error) => void } = {}): void {
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.reapDeadWorkers(end)
        .catch((err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err))))
        .finally(() => (running = false));
    }, opts.everyMs ?? 1000);
    let running = false;
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** @internal WorkerLease's heartbeat. */
  heartbeat(id: string, token: string, create: boolean, url: string, sessions: number, running: number): Promise<unknown> {
    const k = this.workerKeys(id);
    return runScript(this.conn.writer, HEARTBEAT, [k.lease, k.worker, k.workers, k.running, k.agents, k.sessions, k.inbox], [id, token, this.leaseMs, this.orphanTTLMs, create ? 1 : 0, url, sessions, running]);
  }
}

/** A script's array of strings (anything else in it is left out). */
function stringsOf(r: unknown): string[] {
  return Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : [];
}

/** The member of a worker's session index (session-registry.ts writes it). */
export function sessionMember(owner: string | null, sessionID: string): string {
  return JSON.stringify([owner, sessionID]);
}

/** `[owner, session id]` from a sessionMember. */
export function parseSessionMember(m: string): [string | null, string] {
  const v: unknown = JSON.parse(m);
  if (Array.isArray(v) && (typeof v[0] === 'string' || v[0] === null) && typeof v[1] === 'string') return [v[0], v[1]];
  throw new Error(`malformed session index member ${JSON.stringify(m)}`);
}

/** One worker's registration: its heartbeat, load and running set. stop() deregisters. */
export class WorkerLease {
  private timer: NodeJS.Timeout | null = null;
  /** Fires when the lease, as this worker counts it, runs out. */
  private deadline: NodeJS.Timeout | null = null;
  private load = { sessions: 0, running: 0 };
  /** When the last successful renewal was sent (the lease holds until at least then + leaseMs). */
  private renewedAt = 0;
  private isLost = false;
  private stopped = false;
  private beating = false;

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly conn: RedisConnection,
    readonly id: string,
    /** The token API nodes present to this worker's internal endpoint. */
    readonly token: string,
    private readonly leaseMs: number,
    private readonly orphanTTLMs: number,
    private readonly opts: RegisterOptions,
  ) {}

  /** True once the lease is lost (onLeaseLost was called). */
  get lost(): boolean {
    return this.isLost;
  }

  /** @internal Registers and starts the heartbeat. */
  async start(): Promise<void> {
    const sent = Date.now();
    await this.registry.heartbeat(this.id, this.token, true, this.opts.url, 0, 0);
    this.renewed(sent);
    const every = this.opts.heartbeatMs ?? 1000;
    // Beats every tenth of the lease: a Redis pause of up to half the lease (2.5 s of 5 s) ends
    // with a renewal at least a beat before the fencing deadline, whatever the pause's phase.
    this.timer = setInterval(() => this.beat(), Math.min(every, this.leaseMs / 10));
    this.timer.unref();
  }

  /** Sets the load API nodes balance by; sent with the next heartbeat. */
  setLoad(load: { sessions: number; running: number }): void {
    this.load = { ...load };
  }

  /** This worker drains: placement sends it no new session (its heartbeat keeps it alive meanwhile). */
  async markDraining(): Promise<void> {
    await this.conn.writer.hset(this.registry.workerKeys(this.id).worker, 'draining', '1');
  }

  /** Records an execution (or, with `agent`, an agent run) as running here, for the reaper. */
  async markRunning(id: string, kind: 'execution' | 'agent' = 'execution'): Promise<void> {
    const k = this.registry.workerKeys(this.id);
    const set = kind === 'agent' ? k.agents : k.running;
    await this.conn.writer.multi().sadd(set, id).pexpire(set, this.orphanTTLMs).exec();
  }

  /** Records it as finished (its `done` is in its log). */
  async markFinished(id: string, kind: 'execution' | 'agent' = 'execution'): Promise<void> {
    const k = this.registry.workerKeys(this.id);
    await this.conn.writer.srem(kind === 'agent' ? k.agents : k.running, id);
  }

  /** Stops the heartbeat and deletes this worker's keys (a clean shutdown, after its executions ended). */
  async stop(): Promise<void> {
    this.halt();
    if (this.isLost) return;
    const k = this.registry.workerKeys(this.id);
    await this.conn.writer.multi().zrem(k.workers, this.id).del(k.lease, k.worker, k.running, k.agents, k.sessions, k.inbox).exec();
  }

  /** Stops the heartbeat only, as a crash would (tests; the lease then runs out). */
  halt(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    this.timer = null;
    this.deadline = null;
  }

  private beat(): void {
    if (this.stopped || this.isLost) return;
    if (this.beating) return;
    this.beating = true;
    const sent = Date.now();
    this.registry
      .heartbeat(this.id, this.token, false, this.opts.url, this.load.sessions, this.load.running)
      .then(
        (r) => {
          if (r === 1) this.renewed(sent);
          else this.lose('the lease is gone from Redis (it ran out and this worker was reaped)');
        },
        (err: unknown) => this.opts.onError?.(err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => (this.beating = false));
  }

  /** A renewal sent at `sent` succeeded: the lease holds until at least sent + leaseMs; this worker fences well before. */
  private renewed(sent: number): void {
    if (sent <= this.renewedAt || this.stopped) return;
    this.renewedAt = sent;
    if (this.deadline) clearTimeout(this.deadline);
    const fenceMs = this.leaseMs * FENCE_FRACTION;
    this.deadline = setTimeout(() => this.lose(`the lease was not renewed for ${fenceMs} ms (Redis unreachable or too slow)`), sent + fenceMs - Date.now());
    this.deadline.unref();
  }

  private lose(why: string): void {
    if (this.isLost) return;
    this.isLost = true;
    this.halt();
    this.opts.onLeaseLost(why);
  }
}
