/**
 * The log of an execution (`exec:<id>`) or an agent run (`run:<id>`) as an API node's handle
 * serves it (redis-backend.ts, redis-agents.ts): read from Redis, wrapped so that a log Redis
 * lost ends as its stream says (lost-log.ts), with what its worker recorded beside it.
 */
import { ApiError } from '../api-error.js';
import type { LoggedEvent, ReadableLog } from '../execution/readable-log.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { RedisLogReader } from '../redis/redis-log.js';

/** Whose log: an execution's (`exec`) or an agent run's (`run`); its record and log are named `<kind>:<id>`. */
export type WorkKind = 'exec' | 'run';

/** One execution's or agent run's log, opened (openWorkLog). */
export interface WorkLog<L> {
  readonly log: L;
  /** The JSON its worker recorded beside the log (the record's `meta`), null when there is none. */
  readonly meta: string | null;
  /** Resolves once the log ends or can be read no further; one follower, started by the first call (a lookup that never waits costs none). */
  finished(): Promise<void>;
  /** True once the log is closed or gone from Redis (ended by a reaper, forgotten by its worker): nothing left to cancel. */
  over(): Promise<boolean>;
}

/** Opens the log of `kind` `id` and wraps its reader with `wrap`; NOT_FOUND when Redis holds no such log. */
export async function openWorkLog<E extends LoggedEvent, L extends ReadableLog<E>>(conn: RedisConnection, kind: WorkKind, id: string, wrap: (reader: ReadableLog<E>) => L): Promise<WorkLog<L>> {
  const name = `${kind}:${id}`;
  const reader = await RedisLogReader.open<E>(conn, name);
  if (!reader) throw new ApiError('NOT_FOUND', `no ${kind === 'exec' ? 'execution' : 'agent run'} with id ${JSON.stringify(id)}`);
  const log = wrap(reader);
  const meta = await conn.reader.hget(conn.key(name), 'meta');
  let finished: Promise<void> | null = null;
  return {
    log,
    meta,
    finished: () =>
      (finished ??= (async () => {
        try {
          for await (const _ of log.follow(log.lastSeq + 1)) {
            // Only the end matters here.
          }
        } catch {
          // A log that cannot be read further (Redis lost it, or is down) ends too; its readers say why.
        }
      })()),
    over: async () => {
      const now = await RedisLogReader.open<E>(conn, name);
      return !now || now.closed;
    },
  };
}
