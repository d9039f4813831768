/**
 * Owns every session and execution of the server: creation (with a workspace and a host uid),
 * lookup scoped to the owner, admission control, idle expiry, draining, and the retention of
 * finished executions' logs.
 *
 * Admission: a session holds one sandbox slot from the moment it has an execution running or
 * queued until its last one finishes (it runs them one at a time, so slots bound the sandboxes
 * alive at once). A run on a session without a slot needs a free one, server-wide
 * (`maxRunning`) and for its tenant (`maxRunningPerTenant`), or it is refused at once with
 * RATE_LIMITED: no server-wide queue, so a client learns immediately and decides. Sessions
 * count against `maxSessions` and `maxSessionsPerTenant` the same way. Per-tenant caps apply to
 * key holders; without API keys everyone is the one anonymous owner and only the server-wide
 * caps apply.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { CreateSessionRequest, Language } from '@sluice/protocol';
import { adoptWorkspace, cgroupHost, createWorkspace, releaseCgroupHost, removeWorkspace, UIDPool, type CgroupSupport, type Kernel, type SandboxHostPaths } from '@sluice/sandbox';
import type { ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import { Execution, type ExecutionInit } from '../execution/execution.js';
import { LogBudget } from '../execution/log-budget.js';
import { LogDisk } from '../execution/log-disk.js';
import { randomID } from '../random-id.js';
import { Session, sessionRunContext, type ServerRunContext, type SessionSettings, type Spares } from './session.js';
import { SessionPool, type Shell } from './session-pool.js';

export interface SessionManagerDeps {
  config: ServerConfig;
  paths: SandboxHostPaths;
  bwrapPath: string;
  /** Present when the server is root: every session gets its own host uid. */
  uidPool: UIDPool | undefined;
  /** Checked before a session is created with a language. */
  resolveLanguage(language: string): Language;
  log: { warn(obj: object, msg: string): void };
}

/** Sessions are keyed by owner and id, so two tenants can each have a session named "main". */
function key(owner: string | null, id: string): string {
  return `${owner ?? ''}\u0000${id}`;
}

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly creating = new Map<string, Promise<Session>>();
  /** Sessions gone from the map whose sandboxes and workspace are still being removed: close() waits for them. */
  private readonly removing = new Set<Promise<void>>();
  private readonly executions = new Map<string, Execution>();
  /** Executions not finished yet, with the session whose slot they use. */
  private readonly active = new Map<Execution, Session>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private draining = false;
  /** Memory of every execution's log, running and finished (SLUICE_LOG_BUDGET). */
  private readonly logBudget: LogBudget;
  /** Told when a session is deleted or expires (agent runs forget its conversation). */
  private readonly goneListeners: ((owner: string | null, id: string) => void)[] = [];
  /** Pre-started shells for new sessions with the default settings (SLUICE_POOL_SIZE). */
  private readonly pool: SessionPool;
  /** The default settings' sandbox key: a session whose settings have it may adopt a shell. */
  private readonly defaultKey: string;

  /** This server's parent cgroup: named after its data directory (see cgroup-host.ts). */
  private readonly cgroupParent: string;

  /** The host's cgroup support for this server (detected once; the first call sweeps leftovers). */
  cgroups(): Promise<CgroupSupport> {
    return cgroupHost(this.cgroupParent);
  }

  constructor(private readonly deps: SessionManagerDeps) {
    // Once: every run's context names it (a hash per run cost a warm cell ~30 µs).
    this.cgroupParent = `sluice-${createHash('sha256').update(deps.paths.dataDir).digest('hex').slice(0, 12)}`;
    // Finished logs spill to <data>/logs (SLUICE_LOG_DISK_BYTES); a previous server's files go now.
    this.logBudget = new LogBudget(deps.config.logBudgetBytes, new LogDisk({ dir: join(deps.paths.dataDir, 'logs'), maxBytes: deps.config.logDiskBytes, log: deps.log }));
    // Detect cgroups and sweep a crashed predecessor's groups now, not at the first run.
    void this.cgroups().then((cg) => {
      if (cg.version === 'none') deps.log.warn({ reason: cg.reason }, 'no usable cgroups: memory, pids and CPU limits fall back to rlimits');
    });
    this.sweeper = setInterval(() => void this.sweep(), 1000);
    this.sweeper.unref();
    // Without Python (SLUICE_LANGUAGES, or not installed) a default session cannot exist: no pool.
    const python = pythonEnabled(deps.resolveLanguage);
    const defaults = python ? this.settingsFor({}) : null;
    this.defaultKey = defaults ? shellKey(defaults) : '';
    this.pool = new SessionPool({
      size: defaults ? deps.config.poolSize : 0,
      paths: deps.paths,
      uidPool: deps.uidPool,
      quota: { sizeBytes: deps.config.diskBytes, inodes: deps.config.inodes },
      python,
      context: (workspace, uid) => {
        if (!defaults) throw new Error('session pool: no default settings');
        return sessionRunContext(this.serverContext(), defaults, workspace, uid);
      },
      // Shells never take the last session or uid a real request could need.
      roomForShell: () => this.sessions.size + this.creating.size + this.pool.size + 1 < deps.config.maxSessions && (deps.uidPool ? deps.uidPool.inUse + 1 < deps.uidPool.size : true),
      roomForKernel: () => this.kernelsUp() + 1 < deps.config.maxKernels,
      busy: () => this.active.size > 0,
      log: deps.log,
    });
  }

  /**
   * Counts another log (an agent run's) in the server-wide log budget (SLUICE_LOG_BUDGET): past
   * it, the log sheds its oldest events, or is forgotten once finished (`onRelease`).
   */
  budgetLog(log: Parameters<LogBudget['track']>[0], onRelease: () => void): void {
    this.logBudget.track(log, onRelease);
  }

  /** Calls `listener` whenever a session goes away (deleted, expired, server closing). */
  onSessionGone(listener: (owner: string | null, id: string) => void): void {
    this.goneListeners.push(listener);
  }

  /** Creates a session; fails if one with that id exists. */
  async create(owner: string | null, req: CreateSessionRequest): Promise<Session> {
    const id = req.id ?? randomID();
    const k = key(owner, id);
    if (this.sessions.has(k) || this.creating.has(k)) {
      throw new ApiError('INVALID_REQUEST', `id: a session named ${JSON.stringify(id)} already exists; delete it first or choose another id`);
    }
    this.admitSession(owner);
    return this.track(k, this.build(owner, id, req));
  }

  /** The session with this id, created with defaults if it does not exist (a run on a new id). */
  async getOrCreate(owner: string | null, id: string): Promise<Session> {
    const k = key(owner, id);
    const existing = this.sessions.get(k);
    if (existing) return existing;
    const pending = this.creating.get(k);
    if (pending) return pending;
    this.admitSession(owner);
    return this.track(k, this.build(owner, id, {}));
  }

  /** The session, or NOT_FOUND (also for another owner's session: same answer as a missing one). */
  get(owner: string | null, id: string): Session {
    const s = this.sessions.get(key(owner, id));
    if (!s) throw new ApiError('NOT_FOUND', `no session with id ${JSON.stringify(id)}`);
    return s;
  }

  list(owner: string | null): Session[] {
    return [...this.sessions.values()].filter((s) => s.owner === owner);
  }

  /** Every owner's sessions (a worker keeps their Redis records current). */
  all(): Session[] {
    return [...this.sessions.values()];
  }

  /** Kills everything in the session and removes its workspace. */
  async delete(owner: string | null, id: string): Promise<void> {
    const s = this.get(owner, id);
    await this.destroy(s);
  }

  /** Creates an execution in a session's queue; RATE_LIMITED when it would need a slot and none is free. */
  submit(session: Session, init: Omit<ExecutionInit, 'id' | 'sessionID' | 'owner' | 'maxLogBytes'>, id: string = randomID()): Execution {
    this.refuseWhileDraining();
    if (!this.holdsSlot(session)) this.admitRun(session.owner);
    // The id is unguessable: 128 random bits (a v4 UUID has only 122); a worker gets the one its API node chose.
    if (this.executions.has(id)) throw new ApiError('INVALID_REQUEST', `execution id ${JSON.stringify(id)} is taken`);
    const exec = new Execution({
      ...init,
      id,
      sessionID: session.id,
      owner: session.owner,
      // Stored output can grow (JSON escapes, two-byte strings); keep the whole capped output plus headroom.
      maxLogBytes: session.settings.limits.output_bytes * 2 + 1024 * 1024,
    });
    session.enqueue(exec);
    this.executions.set(exec.id, exec);
    // Past the budget the oldest finished executions are forgotten (see log-budget.ts).
    this.logBudget.track(exec.log, () => {
      if (this.executions.get(exec.id) === exec) this.executions.delete(exec.id);
    });
    this.active.set(exec, session);
    void exec.finished.then(() => this.active.delete(exec));
    return exec;
  }

  /**
   * Refuses early, before a session is created for it, a run that could not be admitted: the
   * session `id` has no slot and none is free. `submit` checks again, authoritatively.
   */
  checkRun(owner: string | null, id: string): void {
    this.refuseWhileDraining();
    const s = this.sessions.get(key(owner, id));
    if (!s || !this.holdsSlot(s)) this.admitRun(owner);
  }

  /** The execution, or NOT_FOUND (also when another owner asks). */
  execution(owner: string | null, id: string): Execution {
    const e = this.executions.get(id);
    if (!e || e.owner !== owner) throw new ApiError('NOT_FOUND', `no execution with id ${JSON.stringify(id)}`);
    return e;
  }

  /** True when the owner can still read this execution. */
  hasExecution(owner: string | null, id: string): boolean {
    return this.executions.get(id)?.owner === owner;
  }

  /** Marks a session as having a reader attached; returns the detach function. */
  attach(owner: string | null, sessionID: string): () => void {
    const s = this.sessions.get(key(owner, sessionID));
    if (!s) return () => {};
    s.attached++;
    s.touch();
    return () => {
      s.attached--;
      s.touch();
    };
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Kernels up or starting, pre-started ones included (for the metrics). */
  get kernelCount(): number {
    return this.kernelsUp();
  }

  /**
   * Starts a drain: no new sessions or executions from now on (SANDBOX_UNAVAILABLE), queued
   * executions are cancelled (they never start), running ones go on. `whenIdle` says when they
   * have all finished.
   */
  drain(): void {
    this.draining = true;
    this.pool.stop();
    for (const e of this.active.keys()) if (e.state === 'queued') e.cancel(this.deps.config.killGraceMs);
  }

  /** Resolves once no execution is running or queued. */
  async whenIdle(): Promise<void> {
    while (this.active.size > 0) await Promise.all([...this.active.keys()].map((e) => e.finished));
  }

  /** Cancels everything (SIGKILL after `graceMs`: 0 kills at once) and removes every workspace. */
  async close(graceMs: number = this.deps.config.killGraceMs): Promise<void> {
    this.closed = true;
    this.draining = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.creating.values()]);
    await Promise.all([this.pool.close(), ...[...this.sessions.values()].map((s) => this.destroy(s, graceMs))]);
    // Deletions begun before (a DELETE, an idle expiry): their workspaces must be unmounted too.
    while (this.removing.size > 0) await Promise.allSettled([...this.removing]);
    await this.logBudget.close();
    await releaseCgroupHost(this.cgroupParent);
  }

  private refuseWhileDraining(): void {
    if (this.draining) {
      throw new ApiError('SANDBOX_UNAVAILABLE', 'the server is shutting down and takes no new sessions or runs; retry shortly (another instance, or this one once restarted)', {
        retryAfter: 5,
      });
    }
  }

  /** True when the session already has an execution running or queued (its slot). */
  private holdsSlot(session: Session): boolean {
    for (const s of this.active.values()) if (s === session) return true;
    return false;
  }

  /** Throws RATE_LIMITED unless a new sandbox slot is free, server-wide and for this owner. */
  private admitRun(owner: string | null): void {
    const c = this.deps.config;
    const busy = new Set(this.active.values());
    if (busy.size >= c.maxRunning) {
      throw new ApiError('RATE_LIMITED', `the server is running ${busy.size} sandboxes, its maximum (SLUICE_MAX_RUNNING); retry when one has finished`, {
        retryAfter: 1,
      });
    }
    if (owner === null) return;
    let mine = 0;
    for (const s of busy) if (s.owner === owner) mine++;
    if (mine >= c.maxRunningPerTenant) {
      throw new ApiError(
        'RATE_LIMITED',
        `this API key already has ${mine} sandboxes running, its maximum (SLUICE_MAX_RUNNING_PER_TENANT); wait for one to finish or cancel one`,
        { retryAfter: 1 },
      );
    }
  }

  /** Throws RATE_LIMITED unless another session fits, server-wide and for this owner. */
  private admitSession(owner: string | null): void {
    this.refuseWhileDraining();
    const c = this.deps.config;
    const total = this.sessions.size + this.creating.size;
    if (total >= c.maxSessions) {
      throw new ApiError('RATE_LIMITED', `the server has ${total} sessions, its maximum (SLUICE_MAX_SESSIONS); retry later`, { retryAfter: 5 });
    }
    if (owner === null) return;
    const prefix = key(owner, '');
    let mine = 0;
    for (const k of this.sessions.keys()) if (k.startsWith(prefix)) mine++;
    for (const k of this.creating.keys()) if (k.startsWith(prefix)) mine++;
    if (mine >= c.maxSessionsPerTenant) {
      throw new ApiError(
        'RATE_LIMITED',
        `this API key already has ${mine} sessions, its maximum (SLUICE_MAX_SESSIONS_PER_TENANT); delete one (DELETE /api/sessions/{id}) or let one expire`,
        { retryAfter: 5 },
      );
    }
  }

  /**
   * Lists a session being built under `k` until it is registered. The listed promise is the whole
   * of it, including the removal of a session that was built after close() began: close() waits
   * for it, so no workspace of one is still mounted when the server exits.
   */
  private track(k: string, built: Promise<Session>): Promise<Session> {
    const whole = (async () => {
      try {
        const s = await built;
        if (this.closed) {
          await this.destroyResources(s);
          throw new ApiError('SANDBOX_UNAVAILABLE', 'the server is shutting down');
        }
        this.sessions.set(k, s);
        return s;
      } finally {
        this.creating.delete(k);
      }
    })();
    this.creating.set(k, whole);
    return whole;
  }

  /** A session's settings for this request: the defaults, within the server's caps. */
  private settingsFor(req: CreateSessionRequest): SessionSettings {
    const c = this.deps.config;
    return {
      language: this.deps.resolveLanguage(req.language ?? 'python'),
      env: req.env ?? {},
      timeoutSec: req.timeout === undefined ? undefined : Math.min(req.timeout, c.maxTimeoutSec),
      idleTTLSec: Math.min(req.idle_ttl ?? c.idleTTLSec, c.maxIdleTTLSec),
      network: req.network ?? false,
      limits: {
        output_bytes: capped('limits.output_bytes', req.limits?.output_bytes, c.outputLimitBytes, c.maxOutputLimitBytes),
        processes: capped('limits.processes', req.limits?.processes, c.processes, c.maxProcesses),
        open_files: capped('limits.open_files', req.limits?.open_files, c.openFiles, c.maxOpenFiles),
        file_size: capped('limits.file_size', req.limits?.file_size, c.fileSizeBytes, c.maxFileSizeBytes),
        memory_bytes: capped('limits.memory_bytes', req.limits?.memory_bytes, c.memoryBytes, c.maxMemoryBytes),
        cpu: capped('limits.cpu', req.limits?.cpu, c.cpu, c.maxCPU),
        cpu_time: capped('limits.cpu_time', req.limits?.cpu_time, c.cpuTimeSec, c.maxCPUTimeSec),
        disk_bytes: capped('limits.disk_bytes', req.limits?.disk_bytes, c.diskBytes, c.maxDiskBytes),
        inodes: capped('limits.inodes', req.limits?.inodes, c.inodes, c.maxInodes),
      },
    };
  }

  /** What every session's sandboxes take from the server. */
  private serverContext(): ServerRunContext {
    const c = this.deps.config;
    return {
      bwrapPath: this.deps.bwrapPath,
      passwdFile: this.deps.paths.passwdFile,
      groupFile: this.deps.paths.groupFile,
      reporterFile: this.deps.paths.reporterFile,
      runtimeDir: this.deps.paths.runtimeDir,
      tmpBytes: c.tmpBytes,
      outputKillBytes: c.outputKillBytes,
      killGraceMs: c.killGraceMs,
      cgroupParent: this.cgroupParent,
    };
  }

  private async build(owner: string | null, id: string, req: CreateSessionRequest): Promise<Session> {
    const c = this.deps.config;
    const settings = this.settingsFor(req);
    if (settings.network && !c.allowNetwork) {
      throw new ApiError('FORBIDDEN', 'network: this server does not allow sandboxes to use the network (SLUICE_ALLOW_NETWORK is off)');
    }
    // A shell was made for exactly the default sandbox settings; anything else starts from scratch.
    const shell = shellKey(settings) === this.defaultKey ? await this.adopt(settings) : undefined;
    let uid: number | undefined;
    let workspace: string;
    let spares: Spares | null = null;
    if (shell) {
      ({ uid, workspace, spares } = shell);
    } else {
      uid = this.deps.uidPool?.acquire();
      // Every uid free of sessions is a real session's before it is a shell's.
      while (this.deps.uidPool && uid === undefined && (await this.pool.evict())) uid = this.deps.uidPool.acquire();
      if (this.deps.uidPool && uid === undefined) {
        // Shells are not sessions: they all gave their uids back (evict) before this.
        throw new ApiError('RATE_LIMITED', `the server has no host uid left for a new session: its maximum of ${this.deps.uidPool.size} sessions (SLUICE_UID_COUNT) are taken (${this.sessions.size} live, the rest being created or deleted); delete a session or retry later`, {
          retryAfter: 5,
        });
      }
      try {
        workspace = await createWorkspace(this.deps.paths, uid, { sizeBytes: settings.limits.disk_bytes, inodes: settings.limits.inodes });
      } catch (err) {
        if (uid !== undefined) this.deps.uidPool?.release(uid);
        throw err;
      }
    }
    // The pool fills once the server is in use (its first session), then stays full behind it.
    // A take schedules its own refill a little later: a refill now would compete with this
    // session's first run for the CPU (a launch chain, mounts, the server's spawn()).
    if (!shell) this.pool.refill();
    return new Session(id, owner, settings, workspace, uid, () => this.serverContext(), c.maxQueue, (k) => this.kernelStarted(k), spares);
  }

  /** A pooled shell listed among the sessions' workspaces, or undefined (none, or the link failed). */
  private async adopt(settings: SessionSettings): Promise<Shell | undefined> {
    const shell = this.pool.take();
    if (!shell) return undefined;
    try {
      shell.workspace = await adoptWorkspace(this.deps.paths, shell.workspace);
    } catch (err) {
      this.deps.log.warn({ err }, 'session pool: could not link a shell\'s workspace; starting the session without it');
      await this.pool.discard(shell);
      return undefined;
    }
    shell.spares.process?.moved(sessionRunContext(this.serverContext(), settings, shell.workspace, shell.uid));
    return shell;
  }

  /** Kernels up or starting: the sessions', their spares and the pool's. */
  private kernelsUp(): number {
    let n = this.pool.kernels;
    for (const s of this.sessions.values()) n += s.liveKernels.length + (s.spareKernel ? 1 : 0);
    return n;
  }

  /** Keeps the number of kernels up within SLUICE_MAX_KERNELS: the least recently used idle ones go. */
  private kernelStarted(started: Kernel): void {
    // Pre-started kernels nobody uses yet go first: the pool's, then sessions' spares.
    let spare = this.kernelsUp() - this.deps.config.maxKernels;
    while (spare > 0 && this.pool.dropKernel()) spare--;
    for (const s of this.sessions.values()) if (spare > 0 && s.dropSpareKernel()) spare--;
    const live = [...this.sessions.values()].flatMap((s) => s.liveKernels);
    const excess = live.length - this.deps.config.maxKernels;
    if (excess <= 0) return;
    const idle = live.filter((k) => k !== started && !k.busy).sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    for (const k of idle.slice(0, excess)) void k.evict();
  }

  private async destroy(s: Session, graceMs = this.deps.config.killGraceMs): Promise<void> {
    const k = key(s.owner, s.id);
    if (this.sessions.get(k) !== s) return;
    this.sessions.delete(k);
    for (const l of this.goneListeners) l(s.owner, s.id);
    const removed = this.destroyResources(s, graceMs);
    this.removing.add(removed);
    try {
      await removed;
    } finally {
      this.removing.delete(removed);
    }
  }

  private async destroyResources(s: Session, graceMs = this.deps.config.killGraceMs): Promise<void> {
    try {
      await s.destroy(graceMs);
    } catch (err) {
      // Its workspace goes all the same: a mount must not outlive its session.
      this.deps.log.warn({ err, session: s.id }, 'could not stop everything of a session');
    }
    try {
      await removeWorkspace(s.workspace);
    } catch (err) {
      this.deps.log.warn({ err, session: s.id }, 'could not remove a workspace');
    }
    // Only now is nothing left running under the uid.
    if (s.hostUID !== undefined) this.deps.uidPool?.release(s.hostUID);
    // Room for a shell again, perhaps (the pool stops while there is none).
    if (!this.closed) this.pool.refill();
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.idle && now >= s.expiresAt) await this.destroy(s);
    }
    // Finished executions past retention are forgotten; the byte budget is kept as logs grow (log-budget.ts).
    const c = this.deps.config;
    for (const e of [...this.executions.values()]) {
      if (e.finishedAt !== null && now - e.finishedAt > c.logRetentionSec * 1000) {
        this.executions.delete(e.id);
        e.log.release();
      }
    }
  }
}

/** A requested limit within the server's cap, or the default. */
function capped(field: string, requested: number | undefined, dflt: number, cap: number): number {
  if (requested === undefined) return dflt;
  if (requested > cap) throw new ApiError('INVALID_REQUEST', `${field}: expected at most ${cap} (this server's cap), got ${requested}`);
  return requested;
}

/** The settings a pooled shell is fixed to (its uid, workspace quota and sandboxes): all that is not per run. */
function shellKey(s: SessionSettings): string {
  const env = Object.entries(s.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const { processes, open_files, file_size, memory_bytes, cpu, disk_bytes, inodes } = s.limits;
  return JSON.stringify([env, s.network, processes, open_files, file_size, memory_bytes, cpu, disk_bytes, inodes]);
}

/** True when sessions may use Python here (enabled and installed). */
function pythonEnabled(resolve: (language: string) => Language): boolean {
  try {
    return resolve('python') === 'python';
  } catch {
    return false;
  }
}
