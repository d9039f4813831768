/**
 * What the routes (HTTP, WebSocket, MCP) need of sessions and executions, and nothing of where
 * they live: LocalBackend (local-backend.ts) runs them in this process; a Redis backend will
 * route them to the worker that owns the session and read event logs from Redis. Everything
 * that may cross the network is async, and answers are plain views or small handles, never the
 * Session, Execution or Kernel objects themselves. Errors are ApiErrors, as the routes answer them.
 */
import type { CreateSessionRequest, ExecutionEvent, ExecutionResult, ExecutionState, ExecutionView, Language, RunRequest, SessionView } from '@sluice/protocol';
import type { CgroupSupport } from '@sluice/sandbox';
import type { Readable } from 'node:stream';
import type { ReadableLog } from '../execution/readable-log.js';
import type { FileEntry } from '../files/workspace-files.js';
import type { ExecutionLog } from '../metrics/observe-execution.js';

export interface Backend {
  /** Creates a session; INVALID_REQUEST when one with that id exists, RATE_LIMITED past the caps. */
  createSession(owner: string | null, req: CreateSessionRequest): Promise<SessionView>;
  /** The session's view, or NOT_FOUND (also for another owner's). Looking is not activity. */
  session(owner: string | null, id: string): Promise<SessionView>;
  listSessions(owner: string | null): Promise<SessionView[]>;
  /** Kills everything in the session and removes its workspace; NOT_FOUND when there is none. */
  deleteSession(owner: string | null, id: string): Promise<void>;
  /** Stops the session's kernels (a cell running now ends cancelled): `POST /api/sessions/{id}/restart`. */
  restartSession(owner: string | null, id: string): Promise<RestartedSession>;
  /**
   * Which incarnation of the session `id` lives now, or null when none does: a session deleted
   * and created again under the same id is another incarnation. A WebSocket remembers the one
   * it opened on and closes (NO_SESSION) once that is no longer the live one, so it never goes
   * on talking to a stranger's replacement. Opaque: only compared for equality.
   */
  incarnation(owner: string | null, id: string): Promise<string | null>;
  /** Calls `listener` whenever a session goes away (deleted, expired, server closing). */
  onSessionGone(listener: (owner: string | null, id: string) => void): void;
  /** Marks a reader attached to the session (it does not expire meanwhile); returns the detach. A no-op for a missing session. */
  attach(owner: string | null, sessionID: string): () => void;
  /** Activity on the session: its idle expiry starts again. A no-op for a missing session. */
  touch(owner: string | null, sessionID: string): void;
  /**
   * Queues a run (the session is created with defaults when it does not exist): resolves the
   * language, mode and timeout, applies admission (RATE_LIMITED) and the queue bound.
   * `log` gets the line logged when the run ends (a request's logger names the request).
   */
  submitRun(owner: string | null, sessionID: string, body: RunRequest, log?: ExecutionLog): Promise<ExecutionHandle>;
  /** The execution, or NOT_FOUND (also when another owner asks, or once it is forgotten). */
  execution(owner: string | null, id: string): Promise<ExecutionHandle>;
  /** True when the owner can still read this execution. */
  hasExecution(owner: string | null, id: string): Promise<boolean>;
  /** The session's workspace files; every operation fails NOT_FOUND when the session is gone. */
  files(owner: string | null, sessionID: string): SessionFiles;
  /** How many sessions are alive. */
  sessionCount(): Promise<number>;
  /** The host's cgroup support (whether memory, pids and CPU limits are enforced). */
  cgroups(): Promise<CgroupSupport>;
}

/** `POST /api/sessions/{id}/restart`'s answer: the session after the restart, and the kernels stopped. */
export type RestartedSession = SessionView & { restarted: Language[] };

/** One execution, as the routes use it. Cheap to get: a lookup makes a new one each time. */
export interface ExecutionHandle {
  readonly id: string;
  readonly sessionID: string;
  /** Its event log: every transport follows it directly (no per-event work here). */
  readonly log: ReadableLog<ExecutionEvent>;
  /** Resolves once `done` is in the log. */
  readonly finished: Promise<void>;
  /** Its state and the fold of its log so far (`GET /api/executions/{id}`). */
  view(): Promise<ExecutionView>;
  /** The buffered answer of a run: the fold of the whole log. */
  result(): Promise<ExecutionResult>;
  /** Stops it (a queued one never starts); `cancelled` is false when it had finished already. Idempotent. */
  cancel(graceMs: number): Promise<CancelOutcome>;
  /** Writes to its stdin (`eof` closes it); INVALID_REQUEST once closed or finished, RATE_LIMITED when the program lags. */
  writeStdin(data: string, eof: boolean): Promise<{ state: ExecutionState }>;
}

/** What a cancel did: the state right after it, and whether there was anything to cancel. */
export interface CancelOutcome {
  state: ExecutionState;
  cancelled: boolean;
}

/** An open workspace file, ready to stream: `stream` gives exactly `size` bytes, or fails. */
export interface OpenedSessionFile {
  size: number;
  stream: Readable;
}

/**
 * A session's workspace, for the files API, agent tools and MCP: paths are validated segments
 * (files/workspace-path.ts); errors are the files API's (NOT_FOUND, FORBIDDEN for links…).
 * Every operation is activity on the session.
 */
export interface SessionFiles {
  list(dir: string[]): Promise<FileEntry[]>;
  /** Opens a regular file for download; its stream closes the file (destroy it when not read to the end). */
  open(path: string[]): Promise<OpenedSessionFile>;
  /** Writes a file, creating its parent directories. */
  write(path: string[], data: Buffer): Promise<void>;
  /** Deletes a file, or a directory and everything in it. */
  remove(path: string[]): Promise<void>;
}
