/** The Redis pieces one node of a scale-out deployment shares between its roles (docs/scale-out.md). */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerConfig } from '../../config.js';
import { Admission } from '../redis/admission.js';
import { ClusterRegistry } from '../redis/cluster-registry.js';
import { RedisIdempotency } from '../redis/idempotency.js';
import { Inbox } from '../redis/inbox.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { SessionRegistry } from '../redis/session-registry.js';

/** How long /healthz waits for Redis's PING, ms. */
const PING_MS = 2000;

export interface Cluster {
  conn: RedisConnection;
  registry: ClusterRegistry;
  sessionRegistry: SessionRegistry;
  admission: Admission;
  inbox: Inbox;
  idempotency: RedisIdempotency;
  /** Null when Redis answers a PING in time, else why not. */
  redisProblem(): Promise<string | null>;
}

/** Connects to SLUICE_REDIS_URL (ioredis reconnects by itself; nothing here waits for it). */
export function connectCluster(config: ServerConfig, log: FastifyBaseLogger): Cluster {
  let lastWarning = 0;
  const conn = new RedisConnection({
    url: config.redisURL,
    onError: (err, client) => {
      // A Redis that is down fails every reconnect: one line every 10 s says so.
      if (Date.now() - lastWarning < 10_000) return;
      lastWarning = Date.now();
      log.warn({ err, client }, 'Redis connection error (reconnecting)');
    },
  });
  return {
    conn,
    registry: new ClusterRegistry(conn),
    sessionRegistry: new SessionRegistry(conn),
    admission: new Admission(conn, config),
    inbox: new Inbox(conn),
    idempotency: new RedisIdempotency(conn),
    async redisProblem() {
      let timer: NodeJS.Timeout | undefined;
      try {
        const pong = await Promise.race([
          conn.writer.ping(),
          new Promise<string>((resolve) => {
            timer = setTimeout(() => resolve(`no answer within ${PING_MS} ms`), PING_MS);
          }),
        ]);
        return pong === 'PONG' ? null : pong;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
