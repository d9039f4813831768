/**
 * Owns every session and execution of the server: creation (with a workspace and a host uid),
 * lookup scoped to the owner, idle expiry, and the retention of finished executions' logs.
 */
import type { CreateSessionRequest, Language } from '@sluice/protocol';
import { createWorkspace, removeWorkspace, UIDPool, type SandboxHostPaths } from '@sluice/sandbox';
import { randomUUID } from 'node:crypto';
import type { ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import { Execution, type ExecutionInit } from '../execution/execution.js';
import { Session, type SessionSettings } from './session.js';

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
  private readonly executions = new Map<string, Execution>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly deps: SessionManagerDeps) {
    this.sweeper = setInterval(() => void this.sweep(), 1000);
    this.sweeper.unref();
  }

  /** Creates a session; fails if one with that id exists. */
  async create(owner: string | null, req: CreateSessionRequest): Promise<Session> {
    const id = req.id ?? randomUUID();
    const k = key(owner, id);
    if (this.sessions.has(k) || this.creating.has(k)) {
      throw new ApiError('INVALID_REQUEST', `id: a session named ${JSON.stringify(id)} already exists; delete it first or choose another id`);
    }
    return this.track(k, this.build(owner, id, req));
  }

  /** The session with this id, created with defaults if it does not exist (a run on a new id). */
  async getOrCreate(owner: string | null, id: string): Promise<Session> {
    const k = key(owner, id);
    const existing = this.sessions.get(k);
    if (existing) return existing;
    const pending = this.creating.get(k);
    if (pending) return pending;
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

  /** Kills everything in the session and removes its workspace. */
  async delete(owner: string | null, id: string): Promise<void> {
    const s = this.get(owner, id);
    await this.destroy(s);
  }

  /** Creates an execution in a session's queue. */
  submit(session: Session, init: Omit<ExecutionInit, 'sessionID' | 'owner' | 'maxLogBytes'>): Execution {
    const exec = new Execution({
      ...init,
      sessionID: session.id,
      owner: session.owner,
      // Serialised output can grow (escapes); keep the whole capped output plus headroom.
      maxLogBytes: session.settings.limits.output_bytes * 2 + 1024 * 1024,
    });
    session.enqueue(exec);
    this.executions.set(exec.id, exec);
    return exec;
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

  /** Cancels everything and removes every workspace. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.creating.values()]);
    await Promise.all([...this.sessions.values()].map((s) => this.destroy(s)));
  }

  private async track(k: string, p: Promise<Session>): Promise<Session> {
    this.creating.set(k, p);
    try {
      const s = await p;
      if (this.closed) {
        await this.destroyResources(s);
        throw new ApiError('SANDBOX_UNAVAILABLE', 'the server is shutting down');
      }
      this.sessions.set(k, s);
      return s;
    } finally {
      this.creating.delete(k);
    }
  }

  private async build(owner: string | null, id: string, req: CreateSessionRequest): Promise<Session> {
    const c = this.deps.config;
    const settings: SessionSettings = {
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
    if (settings.network && !c.allowNetwork) {
      throw new ApiError('FORBIDDEN', 'network: this server does not allow sandboxes to use the network (SLUICE_ALLOW_NETWORK is off)');
    }
    const uid = this.deps.uidPool?.acquire();
    if (this.deps.uidPool && uid === undefined) {
      throw new ApiError('RATE_LIMITED', `the server has ${this.deps.uidPool.size} sessions, its maximum; delete one or retry later`, {
        retryAfter: 5,
      });
    }
    let workspace: string;
    try {
      workspace = await createWorkspace(this.deps.paths, uid, { sizeBytes: settings.limits.disk_bytes, inodes: settings.limits.inodes });
    } catch (err) {
      if (uid !== undefined) this.deps.uidPool?.release(uid);
      throw err;
    }
    return new Session(
      id,
      owner,
      settings,
      workspace,
      uid,
      () => ({
        bwrapPath: this.deps.bwrapPath,
        passwdFile: this.deps.paths.passwdFile,
        groupFile: this.deps.paths.groupFile,
        reporterFile: this.deps.paths.reporterFile,
        tmpBytes: c.tmpBytes,
        outputKillBytes: c.outputKillBytes,
        killGraceMs: c.killGraceMs,
      }),
      c.maxQueue,
    );
  }

  private async destroy(s: Session): Promise<void> {
    const k = key(s.owner, s.id);
    if (this.sessions.get(k) !== s) return;
    this.sessions.delete(k);
    await this.destroyResources(s);
  }

  private async destroyResources(s: Session): Promise<void> {
    await s.destroy(this.deps.config.killGraceMs);
    try {
      await removeWorkspace(s.workspace);
    } catch (err) {
      this.deps.log.warn({ err, session: s.id }, 'could not remove a workspace');
    }
    // Only now is nothing left running under the uid.
    if (s.hostUID !== undefined) this.deps.uidPool?.release(s.hostUID);
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.idle && now >= s.expiresAt) await this.destroy(s);
    }
    // Finished executions: drop those past retention, then the oldest while over the byte budget.
    const c = this.deps.config;
    const finished: Execution[] = [];
    let bytes = 0;
    for (const e of this.executions.values()) {
      if (e.finishedAt === null) continue;
      if (now - e.finishedAt > c.logRetentionSec * 1000) {
        this.executions.delete(e.id);
        continue;
      }
      finished.push(e);
      bytes += e.log.bytes;
    }
    if (bytes > c.logBudgetBytes) {
      finished.sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
      for (const e of finished) {
        if (bytes <= c.logBudgetBytes) break;
        this.executions.delete(e.id);
        bytes -= e.log.bytes;
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
