/**
 * The clients of one process to the Redis at `SLUICE_REDIS_URL`, and the names of its keys.
 *
 * Three kinds of connection, so that one kind of wait never holds up another:
 *   - `writer`: every log writer's append scripts. A write Redis makes wait (CLIENT PAUSE WRITE,
 *     a slow fsync) stalls this connection only.
 *   - `reader`: replays (XRANGE with the log's state) and folds, never blocking.
 *   - blocking connections (BlockingPool): one per XREAD BLOCK in flight, since a blocked
 *     connection answers nothing else. Bounded; see BlockingPool.
 *
 * Client options, chosen for the writer's and readers' own retry loops (redis-log.ts), which
 * bound every wait and resend from the last id or seq they know:
 *   - `maxRetriesPerRequest: 0`: a command caught by a dropped connection fails at once rather
 *     than waiting through up to 20 reconnects (ioredis' default) with no bound we control.
 *   - `enableOfflineQueue: true`: a command sent while ioredis reconnects waits for that
 *     reconnect instead of failing instantly, so a blip costs a retry, not an error.
 *   - `autoResendUnfulfilledCommands: false`: our loops resend, and know what to resend (an XREAD
 *     from the last id seen, an append the script makes idempotent by seq).
 *   - reconnect every 50…500 ms for ever: ioredis reconnects by itself; how long a caller waits
 *     is the loops' bound, not the client's.
 *   - TCP keepalive after 5 s idle: the kernel's own probes eventually close a connection whose
 *     peer vanished. Its probes take minutes, so the loops do not rely on it: each bounds its
 *     calls, and a call that outlives its bound on a connection that looks ready means that
 *     connection is half-open (a partition, a dead NAT entry), which forceReconnect() replaces.
 */
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Drops `client`'s socket at once and lets ioredis connect again: its calls in flight fail (and
 * our loops resend them). For a connection that stopped answering without closing; a graceful
 * `disconnect()` would wait for the silent peer. Only when connected (`ready`, or `connect`:
 * connected but its ready check unanswered, which has no timeout of its own); a client between
 * connections is already reconnecting (a TCP connect has ioredis' connectTimeout), so it is left
 * alone and its waiting calls go out on the new connection.
 */
export function forceReconnect(client: Redis): void {
  if (client.status === 'ready' || client.status === 'connect') client.stream.destroy();
}

/** The smallest bound within() asks Redis with; below it there is no time for an answer. */
const MIN_CALL_MS = 50;

/** A call on a Redis client left unanswered past its bound (within): its connection was replaced. */
export class CallTimeout extends Error {
  override readonly name = 'CallTimeout';
}

/**
 * `op` (one call on `client`), rejected with CallTimeout after `ms` when Redis has not answered:
 * a paused Redis or a half-open connection would otherwise leave it waiting with no bound (these
 * clients have no command timeout). The connection is then replaced (forceReconnect), which fails
 * whatever else waited on it: those callers resend.
 */
export async function within<T>(ms: number, client: Redis, op: () => Promise<T>): Promise<T> {
  // Too little time left to ask: failing here costs nothing, while a call that must time out
  // would reset the shared connection under every other call on it.
  if (ms < MIN_CALL_MS) throw new CallTimeout(`no time left to ask Redis (${Math.max(0, Math.round(ms))} ms)`);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      op(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          forceReconnect(client);
          reject(new CallTimeout(`Redis did not answer within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes `client` for good without waiting for its peer (see forceReconnect). */
export function forceClose(client: Redis): void {
  client.disconnect();
  // Not connected yet: no socket.
  const socket: { destroy(): void } | undefined = client.stream;
  socket?.destroy();
}

/** How this process reaches Redis. */
export interface RedisConnectionOptions {
  /** `redis://…` or `rediss://…` (config.ts checked it). */
  url: string;
  /** Prefix of every key (one per deployment sharing the Redis): `sluice:` by default. */
  prefix?: string;
  /** Blocking connections at most (XREAD BLOCK in flight at once); 256 by default. */
  maxBlocking?: number;
  /** Told about connection errors (ioredis reconnects by itself; this is for the server's log). */
  onError?: (err: Error, client: string) => void;
}

/** The two keys of one log: its stream and its state (see redis-log.ts). */
export interface LogKeys {
  stream: string;
  meta: string;
}

/** Blocking connections kept open while idle, for the next follower. */
const MAX_IDLE_BLOCKING = 16;

/** The clients and key names of one process; close() ends them all. */
export class RedisConnection {
  readonly writer: Redis;
  readonly reader: Redis;
  readonly blocking: BlockingPool;
  private readonly prefix: string;

  constructor(private readonly opts: RedisConnectionOptions) {
    this.prefix = opts.prefix ?? 'sluice:';
    this.writer = this.client('writer');
    this.reader = this.client('reader');
    this.blocking = new BlockingPool(() => this.client('blocking'), opts.maxBlocking ?? 256);
  }

  /**
   * The keys of the log `id` (`exec:<execution id>` or `run:<agent run id>`). Both carry `{id}`
   * as a hash tag, so a Redis Cluster keeps them in one slot and a script may touch both.
   */
  logKeys(id: string): LogKeys {
    const base = `${this.prefix}log:{${id}}`;
    return { stream: base, meta: `${base}:meta` };
  }

  /**
   * A key of the cluster's shared state (workers, sessions, inboxes, caps): the prefix, then
   * `name`. Their scripts touch several of these keys at once, so they need one Redis (or a
   * primary with replicas), not a Redis Cluster.
   */
  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** How the keys of an owner (API key id; null without auth) are spelled: `-`, or `k.` and the id URL-encoded. */
  ownerPart(owner: string | null): string {
    return owner === null ? '-' : `k.${encodeURIComponent(owner)}`;
  }

  /** Ends every client (blocked reads fail at once; their followers end). */
  async close(): Promise<void> {
    this.blocking.close();
    await Promise.all([quit(this.writer), quit(this.reader)]);
  }

  private client(name: string): Redis {
    const options: RedisOptions = {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(50 * times, 500),
      keepAlive: 5000,
      connectionName: `sluice-${name}`,
    };
    const client = new Redis(this.opts.url, options);
    // Without a listener ioredis prints every reconnect failure to the console.
    client.on('error', (err: Error) => this.opts.onError?.(err, name));
    return client;
  }
}

/**
 * Connections for XREAD BLOCK, lent for one call at a time. Up to `max` exist; a follower
 * that finds none free waits in line (FIFO) for the next one returned, which happens within one
 * BLOCK timeout (redis-log.ts keeps it short), so past `max` followers share connections
 * fairly at the cost of latency instead of opening connections without bound. Below `max`,
 * each waiting follower has a connection of its own, which an abort can close at once.
 */
export class BlockingPool {
  private readonly idle: Redis[] = [];
  private readonly lent = new Set<Redis>();
  private readonly waiting: { resolve: (c: Redis) => void; reject: (err: Error) => void }[] = [];
  private open = 0;
  private closed = false;

  constructor(
    private readonly make: () => Redis,
    private readonly max: number,
  ) {}

  /** Connections open now (lent or idle). */
  get size(): number {
    return this.open;
  }

  /** A connection for one blocking call; give it back with release(). */
  acquire(signal?: AbortSignal): Promise<Redis> {
    if (this.closed) return Promise.reject(new Error('redis connection closed'));
    const idle = this.idle.pop();
    if (idle) return Promise.resolve(this.lend(idle));
    if (this.open < this.max) {
      this.open++;
      return Promise.resolve(this.lend(this.make()));
    }
    return new Promise<Redis>((resolve, reject) => {
      const waiter = {
        resolve: (c: Redis) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.lend(c));
        },
        reject,
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Returns a connection; `broken` (disconnected to stop its call, or failed) closes it instead. */
  release(client: Redis, broken: boolean): void {
    this.lent.delete(client);
    if (broken || this.closed) {
      forceClose(client);
      this.open--;
      const next = this.waiting.shift();
      if (next && !this.closed) {
        this.open++;
        next.resolve(this.make());
      }
      return;
    }
    const next = this.waiting.shift();
    if (next) next.resolve(client);
    else if (this.idle.length < MAX_IDLE_BLOCKING) this.idle.push(client);
    else {
      this.open--;
      void quit(client);
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) {
      c.disconnect();
      this.open--;
    }
    for (const w of this.waiting.splice(0)) w.reject(new Error('redis connection closed'));
    // Their blocked calls fail now; the followers end (release() then only counts them out).
    for (const c of this.lent) forceClose(c);
  }

  private lend(client: Redis): Redis {
    this.lent.add(client);
    return client;
  }
}

/** QUIT, or a plain disconnect when Redis is not there to answer it. */
async function quit(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
