/**
 * The Backend of an API node (docs/scale-out.md): sessions live on workers, found through the
 * session registry in Redis; runs, cancels, stdin, restarts and deletes are commands to the
 * owning worker's inbox; event logs are read from Redis (any node serves any stream); files and
 * session views are HTTP calls to the worker's internal routes (internal-api.ts). Caps and
 * placement are counted in Redis, so every API node answers alike and holds no state of its own.
 *
 * Every Redis failure becomes SANDBOX_UNAVAILABLE (503), never a silent success: a call that
 * Redis does not answer within CALL_MS (down, paused) fails.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  addEvicted,
  emptyResult,
  foldEvent,
  isErrorCode,
  LANGUAGES,
  type CreateSessionRequest,
  type ExecutionEvent,
  type ExecutionResult,
  type ExecutionView,
  type Language,
  type RunRequest,
  type SessionView,
} from '@sluice/protocol';
import type { CgroupSupport } from '@sluice/sandbox';
import type { ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import type { Backend, CancelOutcome, ExecutionHandle, RestartedSession, SessionFiles } from '../backend/backend.js';
import type { ExecMeta } from '../backend/local-backend.js';
import { foldHeld } from '../execution/fold-log.js';
import type { FileEntry } from '../files/workspace-files.js';
import { iso } from '../http/context.js';
import { randomID } from '../random-id.js';
import type { Admission } from '../redis/admission.js';
import type { ClusterRegistry, WorkerInfo } from '../redis/cluster-registry.js';
import { ABANDON_MS, OutcomeUnknown, type Inbox } from '../redis/inbox.js';
import { type RedisConnection } from '../redis/redis-connection.js';
import type { CommandResults, WorkerCommand } from '../redis/commands.js';
import { EndsWhenLost } from './lost-log.js';
import type { SessionRecord, SessionRegistry } from '../redis/session-registry.js';
import { INTERNAL_PREFIX, OWNER_HEADER, TOKEN_HEADER } from './internal-api.js';
import { openWorkLog } from './work-log.js';

export interface RedisBackendDeps {
  conn: RedisConnection;
  registry: ClusterRegistry;
  sessions: SessionRegistry;
  admission: Admission;
  inbox: Inbox;
  config: ServerConfig;
  /** This host's cgroup support: the local worker's in role `all`, none on an API node. */
  cgroups(): Promise<CgroupSupport>;
}

/** How long one backend call may wait for Redis (down or paused) before it answers 503, ms. */
const CALL_MS = 15_000;
/** The same for a run (or agent run), whose command waits longer for a worker that started it (inbox.ts), ms. */
export const RUN_CALL_MS = 30_000;
/** What a command to a worker leaves of its call's bound for the calls after it, ms. */
const AFTER_SEND_MS = 1000;
/** The shortest wait worth sending a command with, ms. */
const MIN_SEND_MS = 1000;
/** How often an open stream renews its session at most (a third of the idle TTL, at least this), ms. */
const MIN_ATTACH_TOUCH_MS = 500;
/** How often an open stream renews its session at least, ms. */
const MAX_ATTACH_TOUCH_MS = 10_000;
/** How long an HTTP call to a worker may take to answer (a download's body then streams), ms. */
const WORKER_HTTP_MS = 30_000;


export class RedisBackend implements Backend {
  private readonly goneListeners: ((owner: string | null, id: string) => void)[] = [];

  constructor(private readonly deps: RedisBackendDeps) {}

  createSession(owner: string | null, req: CreateSessionRequest): Promise<SessionView> {
    return guard((deadline) => this.create(owner, req, deadline));
  }

  session(owner: string | null, id: string): Promise<SessionView> {
    return guard(async () => {
      const { worker } = await this.live(owner, id);
      return this.workerJSON<SessionView>(worker, owner, 'GET', `sessions/${encodeURIComponent(id)}`);
    });
  }

  listSessions(owner: string | null): Promise<SessionView[]> {
    return guard(async () => {
      const records = await this.deps.sessions.list(owner);
      const byWorker = new Map<string, Set<string>>();
      for (const r of records) {
        if (r.state !== 'live') continue;
        const ids = byWorker.get(r.worker) ?? new Set<string>();
        ids.add(r.id);
        byWorker.set(r.worker, ids);
      }
      const live = new Map((await this.deps.registry.liveWorkers()).map((w) => [w.id, w]));
      const lists = await Promise.all(
        [...byWorker].map(async ([wid, ids]) => {
          const w = live.get(wid);
          if (!w) return [];
          const r = await this.workerJSON<{ sessions: SessionView[] }>(w, owner, 'GET', 'sessions');
          return r.sessions.filter((s) => ids.has(s.id));
        }),
      );
      return lists.flat();
    });
  }

  deleteSession(owner: string | null, id: string): Promise<void> {
    return guard(async (deadline) => {
      const rec = await this.record(owner, id);
      if (rec.state === 'live' && (await this.deps.registry.worker(rec.worker))) {
        try {
          await this.send(deadline, rec.worker, { type: 'delete_session', owner, session_id: id });
        } catch (err) {
          // Gone on the worker already (expired there): the record goes all the same.
          if (!(err instanceof ApiError && err.code === 'NOT_FOUND')) throw err;
        }
      }
      await this.deps.sessions.remove(owner, id);
      await this.deps.admission.releaseSession(owner, id);
      for (const l of this.goneListeners) l(owner, id);
    });
  }

  restartSession(owner: string | null, id: string): Promise<RestartedSession> {
    return guard(async (deadline) => {
      const { rec } = await this.live(owner, id);
      const r = await this.send(deadline, rec.worker, { type: 'restart', owner, session_id: id });
      return { ...r.session, restarted: r.restarted };
    });
  }

  incarnation(owner: string | null, id: string): Promise<string | null> {
    return guard(async () => (await this.deps.sessions.get(owner, id))?.incarnation ?? null);
  }

  onSessionGone(listener: (owner: string | null, id: string) => void): void {
    // Sessions deleted through this node; one that expires on its worker simply stops existing.
    this.goneListeners.push(listener);
  }

  attach(owner: string | null, sessionID: string): () => void {
    // A reader keeps the session alive: the worker sees the record's activity (worker-node.ts
    // sync). Renewed at least three times per idle TTL (at most every 10 s), so a short one cannot lapse between two renewals.
    this.touch(owner, sessionID);
    let timer: NodeJS.Timeout | null = null;
    let retry: NodeJS.Timeout | null = null;
    let detached = false;
    const every = (ms: number): void => {
      if (detached) return;
      if (timer) clearInterval(timer);
      timer = setInterval(() => this.touch(owner, sessionID), Math.min(MAX_ATTACH_TOUCH_MS, Math.max(MIN_ATTACH_TOUCH_MS, ms)));
      timer.unref();
    };
    const lookup = (): void => {
      this.deps.sessions.get(owner, sessionID).then(
        (rec) => every(rec ? rec.idleTTLMs / 3 : MAX_ATTACH_TOUCH_MS),
        () => {
          // Its idle TTL unknown (Redis failed): the shortest renewal keeps any TTL alive, and
          // only until the record can be read again, not for the whole attach.
          every(MIN_ATTACH_TOUCH_MS);
          if (detached) return;
          retry = setTimeout(lookup, MAX_ATTACH_TOUCH_MS);
          retry.unref();
        },
      );
    };
    lookup();
    return () => {
      detached = true;
      if (timer) clearInterval(timer);
      if (retry) clearTimeout(retry);
      this.touch(owner, sessionID);
    };
  }

  touch(owner: string | null, sessionID: string): void {
    this.deps.sessions.touch(owner, sessionID).catch(() => {
      // Activity is best effort: a Redis that is down fails the next real request instead.
    });
  }

  submitRun(owner: string | null, sessionID: string, body: RunRequest): Promise<ExecutionHandle> {
    return guard(async (deadline, state) => {
      const rec = await this.placedSession(owner, sessionID, deadline);
      const { admission, sessions } = this.deps;
      const id = randomID();
      await admission.acquireRun(owner, sessionID, id);
      try {
        await sessions.addWork('exec', id, { owner, sessionID, worker: rec.worker });
        await this.send(deadline, rec.worker, { type: 'run', owner, session_id: sessionID, execution_id: id, request: body });
        state.sent = () =>
          new OutcomeUnknown(`the run started (execution ${id}) but Redis failed before its answer; GET /api/executions/${id} tells; do not simply retry, it may have run`, id);
      } catch (err) {
        // Never started (refused, or abandoned unstarted): the slot is this node's to give back,
        // and its record goes (GET /api/executions/<id> then says it never was).
        // Once the worker started it, the worker gives it back when the run ends.
        if (!(err instanceof OutcomeUnknown)) await Promise.all([admission.releaseRun(owner, sessionID, id).catch(() => {}), sessions.dropWork('exec', id).catch(() => {})]);
        throw err;
      }
      this.touch(owner, sessionID);
      return this.handle(owner, id, sessionID, rec.worker);
    }, RUN_CALL_MS);
  }

  execution(owner: string | null, id: string): Promise<ExecutionHandle> {
    return guard(async () => {
      const rec = await this.deps.sessions.execution(owner, id);
      return this.handle(owner, id, rec.sessionID, rec.worker);
    });
  }

  hasExecution(owner: string | null, id: string): Promise<boolean> {
    return found(this.execution(owner, id));
  }

  files(owner: string | null, sessionID: string): SessionFiles {
    const path = `sessions/${encodeURIComponent(sessionID)}`;
    const q = (name: string, segments: string[]): string => `${name}=${encodeURIComponent(JSON.stringify(segments))}`;
    const worker = async (): Promise<WorkerInfo> => (await this.live(owner, sessionID)).worker;
    return {
      list: (dir) => guard(async () => (await this.workerJSON<{ entries: FileEntry[] }>(await worker(), owner, 'GET', `${path}/files?${q('dir', dir)}`)).entries),
      open: (p) =>
        guard(async () => {
          const res = await this.workerCall(await worker(), owner, 'GET', `${path}/file?${q('path', p)}`);
          if (!res.body) throw new ApiError('INTERNAL', 'the worker sent no file body');
          return { size: Number(res.headers.get('content-length') ?? 0), stream: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) };
        }),
      write: (p, data) =>
        guard(async () => {
          await this.workerCall(await worker(), owner, 'PUT', `${path}/file?${q('path', p)}`, data);
        }),
      remove: (p) =>
        guard(async () => {
          await this.workerCall(await worker(), owner, 'DELETE', `${path}/file?${q('path', p)}`);
        }),
    };
  }

  sessionCount(): Promise<number> {
    return guard(() => this.deps.conn.reader.zcount(this.deps.conn.key('sessions'), `(${Date.now()}`, '+inf'));
  }

  cgroups(): Promise<CgroupSupport> {
    return this.deps.cgroups();
  }

  /**
   * The live session's record, the session created with defaults first when it does not exist
   * (as a run request does, within the call's `deadline`); the `lost` answer when its worker died.
   */
  async placedSession(owner: string | null, sessionID: string, deadline: number): Promise<SessionRecord> {
    let rec = await this.deps.sessions.get(owner, sessionID);
    if (!rec) {
      try {
        await this.create(owner, { id: sessionID }, deadline);
      } catch (err) {
        // Another request created it meanwhile: use that one.
        if (!(err instanceof ApiError && err.code === 'INVALID_REQUEST' && err.message.includes('already exists'))) throw err;
      }
      rec = await this.deps.sessions.get(owner, sessionID);
      if (!rec) throw new ApiError('NOT_FOUND', `no session with id ${JSON.stringify(sessionID)}`);
    }
    if (rec.state === 'lost') throw lostError(sessionID);
    return rec;
  }

  /** Places a new session on the least-loaded worker, within the caps, and creates it there. */
  private async create(owner: string | null, req: CreateSessionRequest, deadline: number): Promise<SessionView> {
    const { admission, registry, sessions, config } = this.deps;
    const id = req.id ?? randomID();
    await admission.checkSession(owner);
    const { worker, added } = await registry.pickWorker(owner, id);
    const idleTTLSec = Math.min(req.idle_ttl ?? config.idleTTLSec, config.maxIdleTTLSec);
    try {
      await sessions.claim(owner, id, worker.id, req, { idleTTLMs: idleTTLSec * 1000, caps: admission.sessionCaps });
    } catch (err) {
      if (added) await registry.unplace(worker.id, owner, id).catch(() => {});
      throw err;
    }
    try {
      return (await this.send(deadline, worker.id, { type: 'create_session', owner, session_id: id, request: { ...req, id } })).session;
    } catch (err) {
      // Not created there (or not known to be): the record goes; a worker that did create it drops it at its next sync.
      await sessions.remove(owner, id).catch(() => {});
      throw err;
    }
  }

  /** The session's record, or NOT_FOUND. */
  private async record(owner: string | null, id: string): Promise<SessionRecord> {
    const rec = await this.deps.sessions.get(owner, id);
    if (!rec) throw new ApiError('NOT_FOUND', `no session with id ${JSON.stringify(id)}`);
    return rec;
  }

  /** The session and its worker; the `lost` answer when that worker died. */
  private async live(owner: string | null, id: string): Promise<{ rec: SessionRecord; worker: WorkerInfo }> {
    const rec = await this.record(owner, id);
    if (rec.state === 'lost') throw lostError(id);
    const worker = await this.deps.registry.worker(rec.worker);
    if (!worker) throw lostError(id);
    return { rec, worker };
  }

  private async handle(owner: string | null, id: string, sessionID: string, worker: string): Promise<ExecutionHandle> {
    const { conn, config } = this.deps;
    const { log, meta: raw, finished, over } = await openWorkLog<ExecutionEvent, EndsWhenLost>(conn, 'exec', id, (reader) => new EndsWhenLost(reader));
    const meta = parseMeta(raw);
    const fold = async (): Promise<{ result: ExecutionResult; startedAt: number | null; finishedAt: number | null }> => {
      const acc = { result: emptyResult(), startedAt: null as number | null, finishedAt: null as number | null };
      await foldHeld<ExecutionEvent, typeof acc>(
        log,
        acc,
        (a, evicted) => addEvicted(a.result, evicted),
        (a, ev) => {
          foldEvent(a.result, ev);
          if (ev.type === 'start') a.startedAt = ev.ts;
          else if (ev.type === 'done') a.finishedAt = ev.ts;
        },
      );
      return acc;
    };
    return {
      id,
      sessionID,
      log,
      get finished(): Promise<void> {
        return finished();
      },
      view: (): Promise<ExecutionView> => guard(async () => {
        const { result, startedAt, finishedAt } = await fold();
        const { execution_id: _id, ...rest } = result;
        return {
          ...rest,
          execution_id: id,
          session_id: sessionID,
          state: finishedAt !== null || log.closed ? 'finished' : startedAt !== null ? 'running' : 'queued',
          language: meta?.language ?? 'python',
          mode: meta?.mode ?? 'process',
          timeout: meta?.timeout ?? config.defaultTimeoutSec,
          last_seq: log.lastSeq,
          created_at: meta?.created_at ?? new Date(0).toISOString(),
          started_at: iso(startedAt),
          finished_at: iso(finishedAt),
        };
      }),
      result: (): Promise<ExecutionResult> => guard(async () => {
        const { result } = await fold();
        result.execution_id = id;
        return result;
      }),
      cancel: (graceMs: number): Promise<CancelOutcome> =>
        guard(async (deadline) => {
          void graceMs; // The worker applies its own grace (SLUICE_KILL_GRACE).
          // Finished (perhaps ended by a reaper, or forgotten by its worker): nothing to cancel, as in one process.
          if (await over()) return { state: 'finished', cancelled: false };
          return this.send(deadline, worker, { type: 'cancel', owner, session_id: sessionID, execution_id: id });
        }),
      writeStdin: (data: string, eof: boolean) =>
        guard(async (deadline) => {
          const r = await this.send(deadline, worker, { type: 'stdin', owner, session_id: sessionID, execution_id: id, data, eof });
          return { state: r.state };
        }),
    };
  }

  /**
   * A command to `worker`, its waits fitted into the call's bound (`deadline`) so that the command
   * is settled (answered, abandoned unstarted, or OutcomeUnknown) before the call answers: a
   * call's 503 never leaves a command that may still start behind it (RedisAgents sends its own
   * commands through it too).
   */
  send<C extends WorkerCommand>(deadline: number, worker: string, command: C): Promise<CommandResults[C['type']]> {
    const left = deadline - Date.now() - ABANDON_MS - AFTER_SEND_MS;
    if (left < MIN_SEND_MS) throw new ApiError('SANDBOX_UNAVAILABLE', `Redis is too slow to send ${command.type} to a worker now; retry shortly`, { retryAfter: 5 });
    const timeoutMs = Math.min(10_000, left / 2);
    return this.deps.inbox.send(worker, command, { timeoutMs, startedWaitMs: left - timeoutMs });
  }

  private async workerJSON<T>(worker: WorkerInfo, owner: string | null, method: string, path: string): Promise<T> {
    return (await (await this.workerCall(worker, owner, method, path)).json()) as T;
  }

  /** One call to a worker's internal routes; its error answers come back as the same ApiError. */
  private async workerCall(worker: WorkerInfo, owner: string | null, method: string, path: string, body?: Buffer): Promise<Response> {
    const headers: Record<string, string> = { [TOKEN_HEADER]: worker.token, [OWNER_HEADER]: JSON.stringify(owner) };
    if (body) headers['content-type'] = 'application/octet-stream';
    let res: Response;
    try {
      res = await fetch(`${worker.url}${INTERNAL_PREFIX}${path}`, { method, headers, ...(body ? { body } : {}), signal: AbortSignal.timeout(WORKER_HTTP_MS) });
    } catch (err) {
      throw new ApiError('SANDBOX_UNAVAILABLE', `the worker of this session did not answer (${worker.url}): ${err instanceof Error ? err.message : String(err)}; retry`, { retryAfter: 1 });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let code: unknown = 'INTERNAL';
    let message = `the worker answered ${res.status}`;
    try {
      const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
      code = e?.code;
      if (typeof e?.message === 'string') message = e.message;
    } catch {
      // Not the contract's shape: keep the status.
    }
    const retry = res.headers.get('retry-after');
    throw new ApiError(isErrorCode(code) ? code : 'INTERNAL', message, retry ? { retryAfter: Number(retry) } : {});
  }
}

/** A session whose worker died: its sandboxes, files and kernels are gone, and retrying does not bring them back. */
export function lostError(id: string): ApiError {
  return new ApiError(
    'SANDBOX_UNAVAILABLE',
    `session ${JSON.stringify(id)} was lost: the worker holding it died, with its sandboxes, files and kernels; delete it (DELETE /api/sessions/${id}) and start again`,
  );
}

function parseMeta(raw: string | null): ExecMeta | null {
  if (raw === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const { language, mode, timeout, created_at: createdAt } = r;
  if (!isLanguage(language) || (mode !== 'process' && mode !== 'kernel') || typeof timeout !== 'number' || typeof createdAt !== 'string') return null;
  return { language, mode, timeout, created_at: createdAt };
}

/** Whether `lookup` finds its execution or run: false when it answers NOT_FOUND; any other failure is thrown. */
export async function found(lookup: Promise<unknown>): Promise<boolean> {
  try {
    await lookup;
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NOT_FOUND') return false;
    throw err;
  }
}

/** What a guarded call has done so far that its failure must not hide. */
export interface CallState {
  /** Set once a command that runs code was sent and may have started: a failure after it is that, never "retry". */
  sent?: () => OutcomeUnknown;
}

/**
 * Runs a backend call: an ApiError passes as it is; anything else (Redis failing) becomes
 * SANDBOX_UNAVAILABLE, and so does a call Redis leaves waiting past `ms` (CALL_MS). `op` gets
 * that deadline: a command to a worker fits its waits into it (send), so nothing it sends can
 * start after the call answered. Once `op` marks a command sent (`state.sent`), a timeout or a
 * Redis failure answers that command's OutcomeUnknown instead of a "retry".
 */
export async function guard<T>(op: (deadline: number, state: CallState) => Promise<T>, ms = CALL_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = Date.now() + ms;
  const state: CallState = {};
  try {
    return await Promise.race([
      op(deadline, state),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(state.sent?.() ?? new ApiError('SANDBOX_UNAVAILABLE', `Redis did not answer within ${ms / 1000} s; retry shortly`, { retryAfter: 5 })), ms);
      }),
    ]);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw state.sent?.() ?? new ApiError('SANDBOX_UNAVAILABLE', `Redis is not reachable: ${err instanceof Error ? err.message : String(err)}; retry shortly`, { retryAfter: 5 });
  } finally {
    clearTimeout(timer);
  }
}

function isLanguage(v: unknown): v is Language {
  return (LANGUAGES as readonly unknown[]).includes(v);
}
