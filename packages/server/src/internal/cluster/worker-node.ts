/**
 * The worker of a scale-out deployment (docs/scale-out.md): it registers in Redis with its
 * internal URL, heartbeats and reports its load, and runs the commands API nodes send to its
 * inbox against its LocalBackend and AgentRuns. An execution's (or agent run's) Redis log, its
 * metadata and its place in this worker's running set exist before its code is queued (or the
 * run starts): nothing runs that Redis does not know of. Then its local event log is teed there
 * (same seqs, same JSON) from its first event, so any API node can follow it at once. An agent
 * run's `run_code` executions are submitted here, counted, recorded and teed like a `run`
 * command's, so they too can be followed, cancelled and reaped from anywhere. The model endpoint
 * (SLUICE_LLM_BASE_URL…) is the worker's configuration: the runs' model calls go out from here.
 * It keeps the session registry current in both directions (activity here, and any session with
 * work queued or running, renews the record; activity on API nodes, such as an open stream,
 * keeps the session here alive) and drops its sessions' records when they go. It renews the
 * sandbox slots of the executions it holds (admission.ts).
 *
 * Fencing: when the lease is lost (Redis unreachable or paused for the lease's length, or the
 * worker was declared dead), every sandbox is killed at once and `onFenced` is told (the server
 * then exits non-zero): by the time any reaper acts, this worker's code has stopped.
 */
import { assertNever, type AgentEvent, type AgentRequest, type ExecutionEvent, type RunRequest } from '@sluice/protocol';
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
import { WORK_LIVE_SEC, type SessionRegistry } from '../redis/session-registry.js';
import type { SessionManager } from '../session/session-manager.js';
import type { Session } from '../session/session.js';
import type { WorkKind } from './work-log.js';

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

/** What a worker runs, as its lease's running set names it: an execution (record and log `exec:<id>`) or an agent run (`run:<id>`). */
type LeaseKind = 'execution' | 'agent';

function recordKind(kind: LeaseKind): WorkKind {
  switch (kind) {
    case 'execution':
      return 'exec';
    case 'agent':
      return 'run';
    default:
      return assertNever(kind, 'work kind');
  }
}

/** How often the load is reported and sessions' activity synchronised with Redis, ms. */
const SYNC_MS = 1000;
/** A session younger than this is not dropped for lacking a Redis record (its claim may be on its way), ms. */
const ORPHAN_GRACE_MS = 10_000;

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
    const { backend, agents, config } = this.deps;
    return {
      create_session: async (c) => ({ session: await backend.createSession(c.owner, { ...c.request, id: c.session_id }) }),
      delete_session: async (c) => {
        await backend.deleteSession(c.owner, c.session_id);
        return {};
      },
      run: async (c) => ({ execution_id: (await this.runHere(c.owner, c.session_id, c.request, c.execution_id)).id }),
      cancel: async (c) => backend.execution(c.owner, c.execution_id).then((e) => e.cancel(config.killGraceMs)),
      stdin: async (c) => {
        const { state } = await (await backend.execution(c.owner, c.execution_id)).writeStdin(c.data, c.eof);
        return { accepted: true, state };
      },
      restart: async (c) => {
        const { restarted, ...session } = await backend.restartSession(c.owner, c.session_id);
        return { session, restarted };
      },
      agent: async (c) => ({ run_id: (await this.startAgentRun(c.owner, c.session_id, c.request, c.run_id)).id }),
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
   * would: counted in Redis's caps under its id, recorded, its log in Redis before it is queued.
   */
  async submitRun(owner: string | null, sessionID: string, body: RunRequest): Promise<ExecutionHandle> {
    const { admission, sessionRegistry } = this.deps;
    const lease = this.lease;
    if (!lease) throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker is not registered', { retryAfter: 1 });
    const id = randomID();
    await admission.acquireRun(owner, sessionID, id);
    try {
      await sessionRegistry.addWork('exec', id, { owner, sessionID, worker: lease.id });
      return await this.runHere(owner, sessionID, body, id);
    } catch (err) {
      // Not queued, so nothing ran: the slot is this worker's to give back (once queued, the tee gives it back).
      await admission.releaseRun(owner, sessionID, id).catch(() => {});
      throw err;
    }
  }

  /**
   * Records the run in Redis (its log, its metadata beside it in `exec:<id>`, this worker's
   * running set), then queues it in its session, which must exist here, then tees its log.
   * When Redis refuses any of that, the run is not queued: nothing runs that nobody could see.
   */
  private async runHere(owner: string | null, sessionID: string, request: RunRequest, id: string): Promise<ExecutionHandle> {
    const { backend, log } = this.deps;
    const made: { writer?: RedisLogWriter<ExecutionEvent>; exec?: ExecutionHandle } = {};
    try {
      made.exec = await backend.submitRun(owner, sessionID, request, log, id, {
        beforeStart: async (meta) => {
          made.writer = await this.openLog<ExecutionEvent>('execution', id, meta, () => void made.exec?.cancel(0).catch(() => {}));
        },
      });
    } catch (err) {
      // Not queued, so nothing ran: undo what Redis was told (whoever took the slot gives it back).
      await this.undoWork('execution', id, made.writer);
      throw err;
    }
    const writer = made.writer;
    if (!writer) throw new ApiError('INTERNAL', 'the run was queued without its log');
    const exec = made.exec;
    this.slots.set(exec.id, { owner, sessionID });
    this.teeLog<ExecutionEvent>('execution', exec.id, exec.log, writer, () => void exec.cancel(0).catch(() => {}), async () => {
      this.slots.delete(exec.id);
      await this.deps.admission.releaseRun(owner, sessionID, exec.id).catch((err: unknown) => this.deps.log.warn({ err }, 'could not release a sandbox slot in Redis (it lapses on its own)'));
    });
    return exec;
  }

  /**
   * Starts agent run `runID` in the session, which must exist here: its log (`run:<id>`; its
   * `meta`: model, max_turns, tools, created_at) and its place in this worker's running set are
   * in Redis before the run starts, then its log is teed there.
   */
  private async startAgentRun(owner: string | null, sessionID: string, request: AgentRequest, runID: string): Promise<AgentRun> {
    const made: { writer?: RedisLogWriter<AgentEvent> } = {};
    let run: AgentRun;
    try {
      run = await this.deps.agents.start(owner, sessionID, request, runID, {
        beforeStart: async (r) => {
          const meta = { model: r.model, max_turns: r.maxTurns, tools: r.tools, created_at: new Date(r.createdAt).toISOString() };
          made.writer = await this.openLog<AgentEvent>('agent', r.id, meta, () => r.cancel());
        },
      });
    } catch (err) {
      // Not started: undo what Redis was told.
      await this.undoWork('agent', runID, made.writer);
      throw err;
    }
    const writer = made.writer;
    if (!writer) {
      run.cancel();
      throw new ApiError('INTERNAL', 'the agent run started without its log');
    }
    this.teeLog<AgentEvent>('agent', run.id, run.log, writer, () => run.cancel(), async () => {});
    return run;
  }

  /**
   * Creates the work's log in Redis with `meta` beside it (the `exec:<id>` / `run:<id>` hash,
   * field `meta`; it lives while the work does, however long) and records the work as running
   * here (for the reaper). SANDBOX_UNAVAILABLE when Redis refuses any of it (nothing of it is
   * then left running here). Once it exists, a write Redis refuses `cancel`s the work.
   */
  private async openLog<E extends LoggedEvent>(kind: LeaseKind, id: string, meta: object, cancel: () => void): Promise<RedisLogWriter<E>> {
    const { conn, config, log } = this.deps;
    const lease = this.lease;
    if (!lease) throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker is not registered', { retryAfter: 1 });
    const logID = `${recordKind(kind)}:${id}`;
    let writer: RedisLogWriter<E> | undefined;
    try {
      writer = await RedisLogWriter.create<E>(conn, logID, {
        retentionSec: config.logRetentionSec,
        onFailure: (err) => {
          log.warn({ err, log: logID }, 'the log cannot be written to Redis: cancelling its work');
          cancel();
        },
      });
      const key = conn.key(logID);
      // The record lives while the work does, however long (the API node's TTL is the same).
      await conn.writer.multi().hset(key, 'meta', JSON.stringify(meta)).pexpire(key, WORK_LIVE_SEC * 1000).exec();
      await lease.markRunning(id, kind);
      return writer;
    } catch (err) {
      // The caller's undoWork drops the record and the running mark; the log is only known here.
      await writer?.discard().catch(() => {});
      throw new ApiError('SANDBOX_UNAVAILABLE', `Redis did not take the log: ${err instanceof Error ? err.message : String(err)}`, { retryAfter: 1 });
    }
  }

  /**
   * Work that was refused after its log was opened (its session busy or gone, this worker
   * draining): its log, its record and its running mark go, so nothing of it lingers in Redis
   * (an empty open log for an hour, a record for a day). Best effort: what Redis will not take
   * lapses on its own.
   */
  private async undoWork<E extends LoggedEvent>(kind: LeaseKind, id: string, writer: RedisLogWriter<E> | undefined): Promise<void> {
    await Promise.all([
      writer?.discard().catch(() => {}),
      // Only when this worker opened its log: a refusal before that leaves the record to its sender.
      writer ? this.deps.sessionRegistry.dropWork(recordKind(kind), id).catch(() => {}) : undefined,
      this.lease?.markFinished(id, kind).catch(() => {}),
    ]);
  }

  /**
   * Copies the local log into Redis, event by event, until it closes; then the work leaves this
   * worker's running set, its record lives as long as its log (retainWork), and `whenEnded` runs.
   * When Redis refuses the log (down, lost, or ended by a reaper), `cancel` stops the work.
   */
  private teeLog<E extends LoggedEvent>(kind: LeaseKind, id: string, local: ReadableLog<E>, writer: RedisLogWriter<E>, cancel: () => void, whenEnded: () => Promise<void>): void {
    const { config, log, sessionRegistry } = this.deps;
    const lease = this.lease;
    const logID = `${recordKind(kind)}:${id}`;
    this.running++;
    const teed = (async () => {
      try {
        for await (const batch of local.follow(1)) {
          // A gap is the local log's own bound: the hole in seqs says the same to Redis readers.
          for (const e of batch) if (e.type !== 'gap') writer.appendEntry(e.seq, e.json);
        }
        await writer.close();
      } catch (err) {
        log.warn({ err, log: logID }, 'teeing the log into Redis failed: cancelling its work');
        cancel();
        writer.abandon();
      } finally {
        this.running--;
        await lease?.markFinished(id, kind).catch(() => {});
        await sessionRegistry.retainWork(recordKind(kind), id, config.logRetentionSec).catch(() => {});
        await whenEnded();
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
