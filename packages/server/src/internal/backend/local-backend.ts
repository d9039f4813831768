/**
 * The Backend of one process: sessions and executions in this process's SessionManager, event
 * logs in its memory and disk. A thin layer: what the routes did with the manager, behind the
 * Backend interface (same answers, same errors).
 */
import { LANGUAGES, type CreateSessionRequest, type Language, type Mode, type RunRequest, type SessionView } from '@sluice/protocol';
import { defaultModeFor, modesFor, runtimeFor, type CgroupSupport } from '@sluice/sandbox';
import type { ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import type { Execution } from '../execution/execution.js';
import { observeExecution, type ExecutionLog } from '../metrics/observe-execution.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { restartKernels } from '../session/restart-kernels.js';
import type { SessionManager } from '../session/session-manager.js';
import type { Session } from '../session/session.js';
import type { Backend, ExecutionHandle, RestartedSession, SessionFiles } from './backend.js';
import { localSessionFiles } from './local-session-files.js';
import { executionView, resultView, sessionView } from './local-views.js';

/** What a run will be, known before it is queued (a worker records it beside the run's log in Redis; an API node reads it back). */
export interface ExecMeta {
  language: Language;
  mode: Mode;
  timeout: number;
  created_at: string;
}

export interface LocalBackendDeps {
  sessions: SessionManager;
  config: ServerConfig;
  resolveLanguage(name: string): Language;
  metrics: ServerMetrics;
  /** Where a run's end is logged when the caller gives no logger of its own. */
  log: ExecutionLog;
}

export class LocalBackend implements Backend {
  private readonly sessions: SessionManager;
  /** Each Session object's incarnation, given when first asked (see Backend.incarnation). */
  private readonly incarnations = new WeakMap<Session, string>();
  private lastIncarnation = 0;

  constructor(private readonly deps: LocalBackendDeps) {
    this.sessions = deps.sessions;
  }

  async createSession(owner: string | null, req: CreateSessionRequest): Promise<SessionView> {
    return sessionView(await this.sessions.create(owner, req));
  }

  async session(owner: string | null, id: string): Promise<SessionView> {
    return sessionView(this.sessions.get(owner, id));
  }

  async listSessions(owner: string | null): Promise<SessionView[]> {
    return this.sessions.list(owner).map(sessionView);
  }

  async deleteSession(owner: string | null, id: string): Promise<void> {
    await this.sessions.delete(owner, id);
  }

  async restartSession(owner: string | null, id: string): Promise<RestartedSession> {
    const session = this.sessions.get(owner, id);
    const restarted = await restartKernels(session);
    return { ...sessionView(session), restarted };
  }

  async incarnation(owner: string | null, id: string): Promise<string | null> {
    let session: Session;
    try {
      session = this.sessions.get(owner, id);
    } catch {
      return null;
    }
    // The Session object is the incarnation: a new one of the same id is a new object.
    let incarnation = this.incarnations.get(session);
    if (incarnation === undefined) {
      incarnation = String(++this.lastIncarnation);
      this.incarnations.set(session, incarnation);
    }
    return incarnation;
  }

  onSessionGone(listener: (owner: string | null, id: string) => void): void {
    this.sessions.onSessionGone(listener);
  }

  attach(owner: string | null, sessionID: string): () => void {
    return this.sessions.attach(owner, sessionID);
  }

  touch(owner: string | null, sessionID: string): void {
    try {
      this.sessions.get(owner, sessionID).touch();
    } catch {
      // Gone: nothing to keep alive.
    }
  }

  /**
   * As Backend.submitRun; `executionID` is the id an API node chose (a worker's `run` command).
   * `inbox` (a worker's): the session must exist here (no blank one is made for a session whose
   * record lives on in Redis), and `beforeStart` runs once the run is checked, before it is queued
   * (it records the run in Redis: nothing starts that Redis does not know of).
   */
  async submitRun(
    owner: string | null,
    sessionID: string,
    body: RunRequest,
    log: ExecutionLog = this.deps.log,
    executionID?: string,
    inbox?: { beforeStart(meta: ExecMeta): Promise<void> },
  ): Promise<ExecutionHandle> {
    const { config, resolveLanguage, metrics } = this.deps;
    // Check the language before creating a session, so a typo does not leave one behind.
    const requested = body.language === undefined ? undefined : resolveLanguage(body.language);
    if (requested !== undefined) checkMode(body.mode, requested);
    // Refuse a run that cannot be admitted before a session is created for it.
    this.sessions.checkRun(owner, sessionID);
    const session = inbox ? this.sessions.get(owner, sessionID) : await this.sessions.getOrCreate(owner, sessionID);
    const language = requested ?? session.settings.language;
    const mode = body.mode ?? defaultModeFor(language);
    checkMode(mode, language);
    const runtime = runtimeFor(language);
    if (!runtime) throw new ApiError('UNSUPPORTED_LANGUAGE', `language: ${language} cannot run on this server`);
    const timeoutSec = Math.min(body.timeout ?? session.settings.timeoutSec ?? config.defaultTimeoutSec, config.maxTimeoutSec);
    await inbox?.beforeStart({ language, mode, timeout: timeoutSec, created_at: new Date().toISOString() });
    const exec = this.sessions.submit(session, {
      language,
      mode,
      runtime,
      code: body.code,
      stdin: body.stdin,
      env: body.env ?? {},
      timeoutSec,
    }, executionID);
    observeExecution(exec, metrics, log);
    return handleOf(exec);
  }

  async execution(owner: string | null, id: string): Promise<ExecutionHandle> {
    return handleOf(this.sessions.execution(owner, id));
  }

  async hasExecution(owner: string | null, id: string): Promise<boolean> {
    return this.sessions.hasExecution(owner, id);
  }

  files(owner: string | null, sessionID: string): SessionFiles {
    // Looked up per operation: a session deleted meanwhile answers NOT_FOUND.
    const files = (): SessionFiles => localSessionFiles(this.sessions.get(owner, sessionID));
    return {
      list: async (dir) => files().list(dir),
      open: async (path) => files().open(path),
      write: async (path, data) => files().write(path, data),
      remove: async (path) => files().remove(path),
    };
  }

  async sessionCount(): Promise<number> {
    return this.sessions.sessionCount;
  }

  cgroups(): Promise<CgroupSupport> {
    return this.sessions.cgroups();
  }
}

/** A handle on an execution of this process: its log is the execution's own. */
function handleOf(exec: Execution): ExecutionHandle {
  return {
    id: exec.id,
    sessionID: exec.sessionID,
    log: exec.log,
    finished: exec.finished,
    view: () => executionView(exec),
    result: () => resultView(exec),
    cancel: async (graceMs) => {
      const wasFinished = exec.state === 'finished';
      exec.cancel(graceMs);
      return { state: exec.state, cancelled: !wasFinished };
    },
    writeStdin: async (data, eof) => {
      exec.writeStdin(data, eof);
      return { state: exec.state };
    },
  };
}

function checkMode(mode: RunRequest['mode'], language: Language): void {
  if (mode !== undefined && !modesFor(language).includes(mode)) {
    const kernels = LANGUAGES.filter((l) => modesFor(l).includes(mode));
    throw new ApiError('INVALID_REQUEST', `mode: "${mode}" is available for ${kernels.join(' and ')}; ${language} runs in "${defaultModeFor(language)}" mode`);
  }
}
