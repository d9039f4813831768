/**
 * The worker of a scale-out deployment (docs/scale-out.md): it registers in Redis with its
 * internal URL, heartbeats and reports its load, and runs the commands API nodes send to its
 * inbox against its LocalBackend. An execution's Redis log, its metadata and its place in this
 * worker's running set exist before its code is queued (nothing runs that Redis does not know
 * of), then its local event log is teed there (same seqs, same JSON) from its first event, so
 * any API node can follow it at once. It keeps the session registry current in both directions
 * (activity here, and any session with work queued or running, renews the record; activity on
 * API nodes, such as an open stream, keeps the session here alive) and drops its sessions'
 * records when they go. It renews the sandbox slots of the executions it holds (admission.ts).
 *
 * Fencing: when the lease is lost (Redis unreachable or paused for the lease's length, or the
 * worker was declared dead), every sandbox is killed at once and `onFenced` is told (the server
 * then exits non-zero): by the time any reaper acts, this worker's code has stopped.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import type { LocalBackend } from '../backend/local-backend.js';
import type { RunCommand } from '../redis/commands.js';
import type { ExecutionHandle } from '../backend/backend.js';
import type { Admission } from '../redis/admission.js';
import type { ClusterRegistry, WorkerLease } from '../redis/cluster-registry.js';
import type { CommandHandlers } from '../redis/commands.js';
import { Inbox } from '../redis/inbox.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { RedisLogWriter } from '../redis/redis-log.js';
import { WORK_LIVE_SEC, type SessionRegistry } from '../redis/session-registry.js';
import type { SessionManager } from '../session/session-manager.js';
import type { Session } from '../session/session.js';

export interface WorkerNodeDeps {
  conn: RedisConnection;
  registry: ClusterRegistry;
  sessionRegistry: SessionRegistry;
  admission: Admission;
  sessions: SessionManager;
  backend: LocalBackend;
  config: ServerConfig;
  log: FastifyBaseLogger;
  /** The lease is lost and every sandbox killed: the process must go (the server exits non-zero). */
  onFenced(why: string): void;
}

/** How often the load is reported and sessions' activity synchronised with Redis, ms. */
const SYNC_MS = 1000;
/** A session younger than this is not dropped for lacking a Redis record (its claim may be on its way), ms. */
const ORPHAN_GRACE_MS = 10_000;

/** A message for the agent commands, which API nodes do not send yet. */
const NO_AGENTS = 'agent runs are not available in a scale-out deployment yet (docs/scale-out.md)';

export class WorkerNode {
  private lease: WorkerLease | null = null;
  private readonly intake = new AbortController();
  private consuming: Promise<void> | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private syncing = false;
  /** Tees under way (each ends when its execution's log is closed in Redis), and sessions' records being removed. */
  private readonly tees = new Set<Promise<void>>();
  /** Each session's last activity pushed to Redis (this worker's clock). */
  private readonly pushed = new WeakMap<Session, number>();
  /** Each session's `last_active` in Redis as last seen (Redis's clock): a change is activity elsewhere. */
  private readonly seen = new WeakMap<Session, number>();
  /** The executions this worker holds a sandbox slot for (admission.ts), renewed by sync. */
  private readonly slots = new Map<string, { owner: string | null; sessionID: string }>();
  /** When the slots were last renewed (this worker's clock). */
  private slotsRenewedAt = 0;
  private fenced = false;
  /** Executions teed now: the load API nodes balance by. */
  private running = 0;

  constructor(private readonly deps: WorkerNodeDeps) {
    deps.sessions.onSessionGone((owner, id) => {
      const gone = this.sessionGone(owner, id);
      this.tees.add(gone);
      void gone.finally(() => this.tees.delete(gone));
    });
  }

  /** The token API nodes present to the internal routes; null until registered. */
  get token(): string | null {
    return this.lease?.token ?? null;
  }

  get id(): string | null {
    return this.lease?.id ?? null;
  }

  /** Registers with `url` (how API nodes reach this worker) and starts taking commands. */
  async start(url: string): Promise<void> {
    const { registry, log } = this.deps;
    const lease = await registry.register({
      url,
      onLeaseLost: (why) => void this.fence(why),
      onError: (err) => log.warn({ err }, 'worker heartbeat failed (the lease holds until it runs out)'),
    });
    this.lease = lease;
    log.info({ worker: lease.id, url }, 'worker registered in Redis');
    this.consuming = new Inbox(this.deps.conn).consume(lease.id, this.handlers(), this.intake.signal).catch((err: unknown) => {
      // The inbox is gone (this worker was reaped) or Redis stayed away: nothing can reach it any more.
      void this.fence(`the inbox cannot be read: ${err instanceof Error ? err.message : String(err)}`);
    });
    this.syncTimer = setInterval(() => void this.sync(), SYNC_MS);
    this.syncTimer.unref();
  }

  /** Draining: tells Redis, so that placement skips this worker (commands for its sessions still come). */
  drain(): void {
    this.lease?.markDraining().catch((err: unknown) => this.deps.log.warn({ err }, 'could not mark this worker draining in Redis'));
  }

  /** Stops taking commands (the first step of a shutdown). */
  stopIntake(): void {
    this.intake.abort();
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = null;
  }

  /** After the sessions are closed: waits for their logs to be in Redis, then deregisters. */
  async stop(): Promise<void> {
    this.stopIntake();
    await this.consuming;
    await Promise.allSettled([...this.tees]);
    if (!this.fenced) await this.lease?.stop().catch((err: unknown) => this.deps.log.warn({ err }, 'could not deregister the worker'));
  }

  private async fence(why: string): Promise<void> {
    if (this.fenced) return;
    this.fenced = true;
    this.deps.log.error({ why }, 'worker lease lost: killing every sandbox now (fencing); the server exits');
    this.stopIntake();
    this.lease?.halt();
    try {
      await this.deps.sessions.close(0);
    } finally {
      this.deps.onFenced(why);
    }
  }

  private handlers(): CommandHandlers {
    const { backend, config } = this.deps;
    return {
      create_session: async (c) => ({ session: await backend.createSession(c.owner, { ...c.request, id: c.session_id }) }),
      delete_session: async (c) => {
        await backend.deleteSession(c.owner, c.session_id);
        return {};
      },
      run: async (c) => ({ execution_id: (await this.run(c)).id }),
      cancel: async (c) => backend.execution(c.owner, c.execution_id).then((e) => e.cancel(config.killGraceMs)),
      stdin: async (c) => {
        const { state } = await (await backend.execution(c.owner, c.execution_id)).writeStdin(c.data, c.eof);
        return { accepted: true, state };
      },
      restart: async (c) => {
        const { restarted, ...session } = await backend.restartSession(c.owner, c.session_id);
        return { session, restarted };
      },
      agent: async () => {
        throw new ApiError('SANDBOX_UNAVAILABLE', NO_AGENTS);
      },
      agent_cancel: async () => {
        throw new ApiError('SANDBOX_UNAVAILABLE', NO_AGENTS);
      },
      forget_conversation: async () => {
        throw new ApiError('SANDBOX_UNAVAILABLE', NO_AGENTS);
      },
    };
  }

  /**
   * Records the run in Redis (its log, its metadata beside it in `exec:<id>`, this worker's
   * running set), then queues it in its session, which must exist here, then tees its log.
   * When Redis refuses any of that, the run is not queued: nothing runs that nobody could see.
   */
  private async run(c: RunCommand): Promise<ExecutionHandle> {
    const { backend, conn, config, log } = this.deps;
    const lease = this.lease;
    if (!lease) throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker is not registered', { retryAfter: 1 });
    const id = c.execution_id;
    const made: { writer?: RedisLogWriter; exec?: ExecutionHandle } = {};
    try {
      made.exec = await backend.submitRun(c.owner, c.session_id, c.request, log, id, {
        beforeStart: async (meta) => {
          try {
            made.writer = await RedisLogWriter.create(conn, `exec:${id}`, {
              retentionSec: config.logRetentionSec,
              onFailure: (err) => {
                log.warn({ err, execution: id }, 'the execution\'s log cannot be written to Redis: cancelling it');
                void made.exec?.cancel(0).catch(() => {});
              },
            });
            const key = conn.key(`exec:${id}`);
            // The record lives while the run does, however long (the API node's TTL would be the same).
            await conn.writer.multi().hset(key, 'meta', JSON.stringify(meta)).pexpire(key, WORK_LIVE_SEC * 1000).exec();
            await lease.markRunning(id);
          } catch (err) {
            throw new ApiError('SANDBOX_UNAVAILABLE', `Redis did not take the execution's log: ${err instanceof Error ? err.message : String(err)}`, { retryAfter: 1 });
          }
        },
      });
    } catch (err) {
      // Not queued, so nothing ran: undo what Redis was told (the API node gives the slot back).
      made.writer?.abandon();
      await lease.markFinished(id).catch(() => {});
      throw err;
    }
    const writer = made.writer;
    if (!writer) throw new ApiError('INTERNAL', 'the run was queued without its log');
    this.tee(c.owner, c.session_id, made.exec, writer);
    return made.exec;
  }

  /** Copies the execution's local log into Redis, event by event, until it closes; then gives its slot back. */
  private tee(owner: string | null, sessionID: string, exec: ExecutionHandle, writer: RedisLogWriter): void {
    const { config, log, admission, sessionRegistry } = this.deps;
    const lease = this.lease;
    const cancel = (): void => void exec.cancel(0).catch(() => {});
    this.running++;
    this.slots.set(exec.id, { owner, sessionID });
    const teed = (async () => {
      try {
        for await (const batch of exec.log.follow(1)) {
          // A gap is the local log's own bound: the hole in seqs says the same to Redis readers.
          for (const e of batch) if (e.type !== 'gap') writer.appendEntry(e.seq, e.json);
        }
        await writer.close();
      } catch (err) {
        log.warn({ err, execution: exec.id }, 'teeing the execution\'s log into Redis failed: cancelling it');
        cancel();
        writer.abandon();
      } finally {
        this.running--;
        this.slots.delete(exec.id);
        await lease?.markFinished(exec.id).catch(() => {});
        await sessionRegistry.retainWork('exec', exec.id, config.logRetentionSec).catch(() => {});
        await admission.releaseRun(owner, sessionID, exec.id).catch((err: unknown) => log.warn({ err }, 'could not release a sandbox slot in Redis (it lapses on its own)'));
      }
    })();
    this.tees.add(teed);
    void teed.finally(() => this.tees.delete(teed));
  }

  /**
   * Reports the load; synchronises each session's activity with its Redis record (all at once:
   * concurrent calls on one connection); renews the slots of the executions held here.
   */
  private async sync(): Promise<void> {
    const { sessions, admission, log } = this.deps;
    const lease = this.lease;
    if (!lease || this.syncing || this.fenced) return;
    this.syncing = true;
    try {
      lease.setLoad({ sessions: sessions.sessionCount, running: this.running });
      await Promise.all(sessions.all().map((s) => this.syncSession(s, lease.id)));
      if (Date.now() - this.slotsRenewedAt > admission.pendingMs / 4) {
        this.slotsRenewedAt = Date.now();
        await Promise.all([...this.slots].map(([id, { owner, sessionID }]) => admission.renewRun(owner, sessionID, id)));
      }
    } catch (err) {
      log.warn({ err }, 'could not synchronise sessions with Redis');
    } finally {
      this.syncing = false;
    }
  }

  private async syncSession(s: Session, me: string): Promise<void> {
    const { sessions, sessionRegistry } = this.deps;
    const rec = await sessionRegistry.get(s.owner, s.id);
    if (!rec || rec.worker !== me) {
      // Deleted or expired in Redis (or taken over): no API node routes here any more.
      if (Date.now() - s.createdAt > ORPHAN_GRACE_MS) await sessions.delete(s.owner, s.id).catch(() => {});
      return;
    }
    // Redis's clock against Redis's clock: a `last_active` newer than the last one seen is activity elsewhere.
    const seen = this.seen.get(s);
    if (seen !== undefined && rec.lastActiveAt > seen) s.touch();
    this.seen.set(s, Math.max(seen ?? 0, rec.lastActiveAt));
    // A session with work queued or running never lapses in Redis, however short its idle TTL.
    if (!s.idle || s.lastActiveAt > (this.pushed.get(s) ?? 0)) {
      this.pushed.set(s, s.lastActiveAt);
      const at = await sessionRegistry.touch(s.owner, s.id);
      if (at !== null) this.seen.set(s, Math.max(this.seen.get(s) ?? 0, at));
    }
  }

  private async sessionGone(owner: string | null, id: string): Promise<void> {
    const { sessionRegistry, admission, log } = this.deps;
    const me = this.lease?.id;
    if (!me || this.fenced) return;
    try {
      const rec = await sessionRegistry.get(owner, id);
      if (rec && rec.worker === me) {
        await sessionRegistry.remove(owner, id);
        await admission.releaseSession(owner, id);
      }
    } catch (err) {
      log.warn({ err, session: id }, 'could not remove a session from Redis (its record expires on its own)');
    }
  }
}
