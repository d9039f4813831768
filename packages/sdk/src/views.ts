/**
 * What the server answers about sessions, executions, languages and files, in camelCase, and
 * the readers that narrow the wire's `unknown` JSON into them (one validator at the edge: a
 * missing or mistyped field is the server's bug and throws an InternalError naming it).
 */
import type { DoneReason, ExecutionResult, Mode } from '@sluice/protocol';
import { InternalError } from './errors.js';
import type { ProgressInfo } from './run-result.js';

/** Resource limits of a session (each within the server's caps; see docs/limits.md). */
export interface SessionLimits {
  /** Output bytes kept per execution (head and tail) before `truncated`. */
  outputBytes?: number | undefined;
  /** Processes and threads at once. */
  processes?: number | undefined;
  openFiles?: number | undefined;
  /** Largest file the code may write, bytes. */
  fileSize?: number | undefined;
  /** Memory of all the session's processes together, bytes. */
  memoryBytes?: number | undefined;
  /** CPUs' worth of time at once (e.g. 0.5). */
  cpu?: number | undefined;
  /** CPU-time budget of one execution, seconds. */
  cpuTime?: number | undefined;
  /** Size of the workspace, bytes. */
  diskBytes?: number | undefined;
  /** Files and directories the workspace may hold. */
  inodes?: number | undefined;
}

/** A session as the server describes it (`GET /api/sessions/{id}`); env values are never echoed. */
export interface SessionInfo {
  id: string;
  language: string;
  envKeys: string[];
  /** Default execution timeout of the session, seconds (null: the server's). */
  timeout: number | null;
  idleTTL: number;
  network: boolean;
  limits: SessionLimits;
  state: 'idle' | 'running';
  runningExecution: string | null;
  queued: number;
  executions: number;
  createdAt: string;
  lastActiveAt: string;
  expiresAt: string;
}

/** One runtime of `GET /api/languages`. */
export interface LanguageInfo {
  language: string;
  installed: boolean;
  version: string | null;
  /** Why it is not installed. */
  reason: string | null;
  defaultMode: Mode;
}

/** An execution's state and the fold of its log so far (`GET /api/executions/{id}`). */
export interface ExecutionInfo {
  executionID: string;
  sessionID: string;
  state: 'queued' | 'running' | 'finished';
  language: string;
  mode: Mode;
  timeout: number | null;
  lastSeq: number;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  reason: DoneReason | null;
  signal: string | null;
  durationMs: number | null;
  results: Record<string, unknown>[];
  progress: ProgressInfo[];
  truncated: boolean;
  error: { code: string; message: string } | null;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The answer to a cancel. */
export interface CancelResult {
  executionID: string;
  state: string;
  /** False when the execution had already finished. */
  cancelled: boolean;
}

/** One entry of a workspace directory listing. */
export interface FileEntry {
  name: string;
  /** Relative to the workspace. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  modifiedAt: string;
}

/** Typed reads off an untrusted JSON object; failures name `what.field`. */
class Reader {
  private readonly obj: Record<string, unknown>;
  constructor(
    value: unknown,
    private readonly what: string,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InternalError(`${what}: expected a JSON object from the server`);
    this.obj = value as Record<string, unknown>;
  }
  raw(key: string): unknown {
    return this.obj[key];
  }
  string(key: string): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }
  stringOrNull(key: string): string | null {
    const v = this.obj[key];
    if (v === null || v === undefined) return null;
    return this.string(key);
  }
  number(key: string): number {
    const v = this.obj[key];
    if (typeof v !== 'number') this.fail(key, 'a number', v);
    return v;
  }
  numberOrNull(key: string): number | null {
    const v = this.obj[key];
    if (v === null || v === undefined) return null;
    return this.number(key);
  }
  boolean(key: string): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'a boolean', v);
    return v;
  }
  array(key: string): unknown[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'an array', v);
    return v;
  }
  object(key: string): Record<string, unknown> {
    const v = this.obj[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v);
    return v as Record<string, unknown>;
  }
  oneOf<const T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.obj[key];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(key, `one of ${allowed.join(', ')}`, v);
    return v as T;
  }
  private fail(key: string, expected: string, got: unknown): never {
    throw new InternalError(`${this.what}.${key}: expected ${expected} from the server, got ${JSON.stringify(got) ?? 'nothing'}`);
  }
}

const LIMIT_KEYS: Record<keyof SessionLimits, string> = {
  outputBytes: 'output_bytes',
  processes: 'processes',
  openFiles: 'open_files',
  fileSize: 'file_size',
  memoryBytes: 'memory_bytes',
  cpu: 'cpu',
  cpuTime: 'cpu_time',
  diskBytes: 'disk_bytes',
  inodes: 'inodes',
};

/** camelCase limits → the wire's snake_case. */
export function limitsToWire(limits: SessionLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, wire] of Object.entries(LIMIT_KEYS)) {
    const v = limits[k as keyof SessionLimits];
    if (v !== undefined) out[wire] = v;
  }
  return out;
}

function limitsFromWire(obj: Record<string, unknown>): SessionLimits {
  const out: SessionLimits = {};
  for (const [k, wire] of Object.entries(LIMIT_KEYS)) {
    const v = obj[wire];
    if (typeof v === 'number') out[k as keyof SessionLimits] = v;
  }
  return out;
}

export function readSessionInfo(value: unknown): SessionInfo {
  const r = new Reader(value, 'session');
  return {
    id: r.string('id'),
    language: r.string('language'),
    envKeys: r.array('env_keys').filter((k): k is string => typeof k === 'string'),
    timeout: r.numberOrNull('timeout'),
    idleTTL: r.number('idle_ttl'),
    network: r.boolean('network'),
    limits: limitsFromWire(r.object('limits')),
    state: r.oneOf('state', ['idle', 'running']),
    runningExecution: r.stringOrNull('running_execution'),
    queued: r.number('queued'),
    executions: r.number('executions'),
    createdAt: r.string('created_at'),
    lastActiveAt: r.string('last_active_at'),
    expiresAt: r.string('expires_at'),
  };
}

export function readLanguageInfo(value: unknown): LanguageInfo {
  const r = new Reader(value, 'language');
  return {
    language: r.string('language'),
    installed: r.boolean('installed'),
    version: r.stringOrNull('version'),
    reason: r.stringOrNull('reason'),
    defaultMode: r.oneOf('default_mode', ['kernel', 'process']),
  };
}

export function readExecutionInfo(value: unknown): ExecutionInfo {
  const r = new Reader(value, 'execution');
  const fold = value as Partial<ExecutionResult>;
  const error = r.raw('error');
  return {
    executionID: r.string('execution_id'),
    sessionID: r.string('session_id'),
    state: r.oneOf('state', ['queued', 'running', 'finished']),
    language: r.string('language'),
    mode: r.oneOf('mode', ['kernel', 'process']),
    timeout: r.numberOrNull('timeout'),
    lastSeq: r.number('last_seq'),
    stdout: r.string('stdout'),
    stderr: r.string('stderr'),
    exitCode: r.numberOrNull('exit_code'),
    reason: (r.stringOrNull('reason') as DoneReason | null) ?? null,
    signal: r.stringOrNull('signal'),
    durationMs: r.numberOrNull('duration_ms'),
    results: Array.isArray(fold.results) ? fold.results : [],
    progress: Array.isArray(fold.progress) ? fold.progress : [],
    truncated: r.boolean('truncated'),
    error: typeof error === 'object' && error !== null ? (error as { code: string; message: string }) : null,
    createdAt: r.stringOrNull('created_at'),
    startedAt: r.stringOrNull('started_at'),
    finishedAt: r.stringOrNull('finished_at'),
  };
}

export function readCancelResult(value: unknown): CancelResult {
  const r = new Reader(value, 'cancel');
  return { executionID: r.string('execution_id'), state: r.string('state'), cancelled: r.boolean('cancelled') };
}

export function readFileEntry(value: unknown): FileEntry {
  const r = new Reader(value, 'file');
  return {
    name: r.string('name'),
    path: r.string('path'),
    type: r.oneOf('type', ['file', 'directory', 'symlink', 'other']),
    size: r.number('size'),
    modifiedAt: r.string('modified_at'),
  };
}

/** The list in `{[key]: [...]}`, each item read by `read`. */
export function readList<T>(value: unknown, key: string, read: (v: unknown) => T): T[] {
  return new Reader(value, key).array(key).map(read);
}

/** One named field of an object answer, as an object. */
export function readField(value: unknown, key: string, what: string): unknown {
  return new Reader(value, what).raw(key);
}
