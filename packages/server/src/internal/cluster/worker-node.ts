/**
 * The worker of a scale-out deployment (docs/scale-out.md): it registers in Redis with its
 * internal URL, heartbeats and reports its load, and runs the commands API nodes send to its
 * inbox against its LocalBackend and AgentRuns. Every execution's and agent run's local event
 * log is teed into Redis (same seqs, same JSON) from its first event, and the Redis log exists
 * before the `run` (`agent`) reply, so any API node can follow it at once. An agent run's
 * `run_code` executions are submitted here, teed and recorded like a `run` command's, so they
 * too can be followed, cancelled and reaped from anywhere. The model endpoint
 * (SLUICE_LLM_BASE_URL…) is the worker's configuration: the runs' model calls go out from here. It keeps the session registry current in both directions
 * (activity here renews the record; activity on API nodes, such as an open stream, keeps the
 * session here alive) and drops its sessions' records when they go.
 *
 * Fencing: when the lease is lost (Redis unreachable or paused for the lease's length, or the
 * worker was declared dead), every sandbox is killed at once and `onFenced` is told (the server
 * then exits non-zero): by the time any reaper acts, this worker's code has stopped.
 */
import type { AgentEvent, ExecutionEvent, RunRequest } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerConfig } from '../../config.js';
import type { AgentRun } from '../agent/agent-run.js';
import type { AgentRuns } from '../agent/agent-runs.js';
import { ApiError } from '../api-error.js';
import type { LocalBackend } from '../backend/local-backend.js';
import type { ExecutionHandle } from '../backend/backend.js';
import type { LoggedEvent, ReadableLog } from '../execution/readable-log.js';
import { randomID } from '../random-id.js';
import type { Admission } from '../redis/admission.js';
import type { ClusterRegistry, WorkerLease } from '../redis/cluster-registry.js';
import type { CommandHandlers } from '../redis/commands.js';
import { Inbox } from '../redis/inbox.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { RedisLogWriter } from '../redis/redis-log.js';
import type { SessionRegistry } from '../redis/session-registry.js';
import type { SessionManager } from '../session/session-manager.js';
import type { Session } from '../session/session.js';

export interface WorkerNodeDeps {
  conn: RedisConnection;
  registry: ClusterRegistry;
  sessionRegistry: SessionRegistry;
  admission: Admission;
  sessions: SessionManager;
  backend: LocalBackend;
  agents: AgentRuns;
  config: ServerConfig;
  log: FastifyBaseLogger;
  /** The lease is lost and every sandbox killed: the process must go (the server exits non-zero). */
  onFenced(why: string): void;
}

/** How often the load is reported and sessions' activity synchronised with Redis, ms. */
const SYNC_MS = 1000;

export class WorkerNode {
  private lease: WorkerLease | null = null;
  private readonly intake = new AbortController();
  private consuming: Promise<void> | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private syncing = false;
  /** Tees under way (each ends when its execution's log is closed in Redis), and sessions' records being removed. */
  private readonly tees = new Set<Promise<void>>();
  /** Each session's last activity pushed to Redis. */
  private readonly pushed = new WeakMap<Session, number>();
  private fenced = false;
  /** Executions (and agent runs) teed now: the load API nodes balance by. */
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
    const { backend, agents, config } = this.deps;
    return {
      create_session: async (c) => ({ session: await backend.createSession(c.owner, { ...c.request, id: c.session_id }) }),
      delete_session: async (c) => {
        await backend.deleteSession(c.owner, c.session_id);
        return {};
      },
      run: async (c) => {
        const exec = await backend.submitRun(c.owner, c.session_id, c.request, this.deps.log, c.execution_id);
        await this.tee(c.owner, c.session_id, exec);
        return { execution_id: exec.id };
      },
      cancel: async (c) => backend.execution(c.owner, c.execution_id).then((e) => e.cancel(config.killGraceMs)),
      stdin: async (c) => {
        const { state } = await (await backend.execution(c.owner, c.execution_id)).writeStdin(c.data, c.eof);
        return { accepted: true, state };
      },
      restart: async (c) => {
        const { restarted, ...session } = await backend.restartSession(c.owner, c.session_id);
        return { session, restarted };
      },
      agent: async (c) => {
        const run = await agents.start(c.owner, c.session_id, c.request, c.run_id);
        await this.teeAgentRun(run);
        return { run_id: run.id };
      },
      agent_cancel: async (c) => {
        const run = agents.get(c.owner, c.run_id);
        const wasFinished = run.state === 'finished';
        run.cancel();
        return { cancelled: !wasFinished };
      },
      forget_conversation: async (c) => {
        agents.forget(c.owner, c.session_id);
        return {};
      },
    };
  }

  /**
   * Queues an agent run's `run_code` execution in the local session as an API node's `run`
   * would: counted in Redis's caps, recorded under its id, its log teed into Redis.
   */
  async submitRun(owner: string | null, sessionID: string, body: RunRequest): Promise<ExecutionHandle> {
    const { admission, sessionRegistry, backend, config, log } = this.deps;
    const lease = this.lease;
    if (!lease) throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker is not registered', { retryAfter: 1 });
    await admission.acquireRun(owner, sessionID);
    let exec: ExecutionHandle;
    try {
      const id = randomID();
      await sessionRegistry.addWork('exec', id, { owner, sessionID, worker: lease.id }, config.logRetentionSec);
      exec = await backend.submitRun(owner, sessionID, body, log, id);
      await this.tee(owner, sessionID, exec);
    } catch (err) {
      await admission.releaseRun(owner, sessionID).catch(() => {});
      throw err;
    }
    return exec;
  }

  /**
   * Creates the execution's log in Redis and copies its local log there, event by event, until
   * it closes; its metadata goes beside it (`exec:<id>` hash, field `meta`). When Redis refuses
   * the log (down, lost, or ended by a reaper), the execution is cancelled: nobody could see it.
   */
  private async tee(owner: string | null, sessionID: string, exec: ExecutionHandle): Promise<void> {
    const view = await exec.view().catch((err: unknown) => {
      void exec.cancel(0).catch(() => {});
      throw err;
    });
    const meta = { language: view.language, mode: view.mode, timeout: view.timeout, created_at: view.created_at };
    await this.teeLog<ExecutionEvent>(`exec:${exec.id}`, 'execution', exec.log, meta, () => void exec.cancel(0).catch(() => {}), async () => {
      await this.deps.admission.releaseRun(owner, sessionID).catch((err: unknown) => this.deps.log.warn({ err }, 'could not release a sandbox slot in Redis (it lapses on its own)'));
    });
  }

  /** An agent run's log, teed as an execution's (`run:<id>`; its `meta`: model, max_turns, tools, created_at). */
  private async teeAgentRun(run: AgentRun): Promise<void> {
    const meta = { model: run.model, max_turns: run.maxTurns, tools: run.tools, created_at: new Date(run.createdAt).toISOString() };
    await this.teeLog<AgentEvent>(`run:${run.id}`, 'agent', run.log, meta, () => run.cancel(), async () => {});
  }

  /**
   * Creates the log `id` in Redis with `meta` beside it (the `id` hash, field `meta`), records it
   * as running here (for the reaper), then copies the local log there until it closes. When
   * Redis refuses the log (down, lost, or ended by a reaper), `cancel` stops the work: nobody
   * could see it.
   */
  private async teeLog<E extends LoggedEvent>(id: string, kind: 'execution' | 'agent', local: ReadableLog<E>, meta: object, cancel: () => void, whenEnded: () => Promise<void>): Promise<void> {
    const { conn, config, log } = this.deps;
    const lease = this.lease;
    const workID = id.slice(id.indexOf(':') + 1);
    if (!lease) {
      cancel();
      throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker is not registered', { retryAfter: 1 });
    }
    let writer: RedisLogWriter<E>;
    try {
      writer = await RedisLogWriter.create<E>(conn, id, {
        retentionSec: config.logRetentionSec,
        onFailure: (err) => {
          log.warn({ err, log: id }, 'the log cannot be written to Redis: cancelling its work');
          cancel();
        },
      });
      const key = conn.key(id);
      await conn.writer.multi().hset(key, 'meta', JSON.stringify(meta)).pexpire(key, Math.ceil(config.logRetentionSec * 1000)).exec();
      await lease.markRunning(workID, kind);
    } catch (err) {
      // Not started as far as Redis knows: the caller gives back what it took.
      cancel();
      throw new ApiError('SANDBOX_UNAVAILABLE', `Redis did not take the log: ${err instanceof Error ? err.message : String(err)}`, { retryAfter: 1 });
    }
    this.running++;
    const teed = (async () => {
      try {
        for await (const batch of local.follow(1)) {
          // A gap is the local log's own bound: the hole in seqs says the same to Redis readers.
          for (const e of batch) if (e.type !== 'gap') writer.appendEntry(e.seq, e.json);
        }
        await writer.close();
      } catch (err) {
        log.warn({ err, log: id }, 'teeing the log into Redis failed: cancelling its work');
        cancel();
        writer.abandon();
      } finally {
        this.running--;
        await lease.markFinished(workID, kind).catch(() => {});
        await whenEnded();
      }
    })();
    this.tees.add(teed);
    void teed.finally(() => this.tees.delete(teed));
  }

  /** Reports the load; synchronises each session's activity with its Redis record. */
  private async sync(): Promise<void> {
    const { sessions, sessionRegistry, log } = this.deps;
    const lease = this.lease;
    if (!lease || this.syncing || this.fenced) return;
    this.syncing = true;
    try {
      lease.setLoad({ sessions: sessions.sessionCount, running: this.running });
      for (const s of sessions.all()) {
        const rec = await sessionRegistry.get(s.owner, s.id);
        if (!rec || rec.worker !== lease.id) {
          // Deleted or expired in Redis (or taken over): no API node routes here any more.
          if (Date.now() - s.createdAt > 10_000) await sessions.delete(s.owner, s.id).catch(() => {});
          continue;
        }
        if (rec.lastActiveAt > s.lastActiveAt) s.touch();
        else if (s.lastActiveAt > (this.pushed.get(s) ?? 0)) {
          this.pushed.set(s, s.lastActiveAt);
          await sessionRegistry.touch(s.owner, s.id);
        }
      }
    } catch (err) {
      log.warn({ err }, 'could not synchronise sessions with Redis');
    } finally {
      this.syncing = false;
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
