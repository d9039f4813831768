/**
 * What the server answers about sessions, executions, languages and files, in camelCase, and
 * the readers that narrow the wire's `unknown` JSON into them (one validator at the edge: a
 * missing or mistyped field is the server's bug and throws an InternalError naming it). The
 * wire shapes are @sluice/protocol's views: each reader is typed by one, so it can only read
 * fields that view declares, as the type it declares.
 */
import {
  AGENT_END_REASONS,
  AGENT_RUN_STATES,
  AGENT_TOOLS,
  EXECUTION_STATES,
  MODES,
  SESSION_STATES,
  type AgentEndReason,
  type AgentRunResult,
  type AgentRunState,
  type AgentRunView,
  type AgentTool,
  type DoneReason,
  type ExecutionState,
  type ExecutionView,
  type LanguageView,
  type Mode,
  type SessionLimits as WireSessionLimits,
  type SessionState,
  type SessionView,
} from '@sluice/protocol';
import { toAgentResult, type AgentResult } from './agent-result.js';
import { InternalError } from './errors.js';
import type { ProgressInfo } from './run-result.js';

/** A wire field name in camelCase: `memory_bytes` → `memoryBytes`. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/**
 * Resource limits of a session, each within the server's caps (docs/limits.md): the protocol's
 * `SessionLimits` in camelCase (`outputBytes`, `processes`, `openFiles`, `fileSize`,
 * `memoryBytes` (bytes, all processes together), `cpu` (CPUs' worth, e.g. 0.5), `cpuTime`
 * (seconds per execution), `diskBytes`, `inodes`); absent ones take the server's defaults.
 */
export type SessionLimits = { [K in keyof WireSessionLimits as CamelCase<K>]?: WireSessionLimits[K] | undefined };

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
  state: SessionState;
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
  state: ExecutionState;
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

/** The keys of `T` whose values are all of type `V`. */
type KeysOf<T, V> = { [K in keyof T]-?: T[K] extends V ? K : never }[keyof T] & string;

/** The answer to a cancel, as the server sends it. */
interface CancelWire {
  execution_id: string;
  state: string;
  cancelled: boolean;
}
/** A directory entry, as the server sends it. */
interface FileEntryWire {
  name: string;
  path: string;
  type: FileEntry['type'];
  size: number;
  modified_at: string;
}

/**
 * Typed reads off an untrusted JSON object whose shape is the wire type `T`; failures name
 * `what.field`. Each read names a field of `T` of the type read, so a reader cannot drift from
 * the declared shape.
 */
class Reader<T extends object> {
  private readonly obj: Record<string, unknown>;
  constructor(
    value: unknown,
    private readonly what: string,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InternalError(`${what}: expected a JSON object from the server`);
    this.obj = value as Record<string, unknown>;
  }
  raw(key: keyof T & string): unknown {
    return this.obj[key];
  }
  string(key: KeysOf<T, string>): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }
  stringOrNull(key: KeysOf<T, string | null>): string | null {
    const v = this.obj[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }
  number(key: KeysOf<T, number>): number {
    const v = this.obj[key];
    if (typeof v !== 'number') this.fail(key, 'a number', v);
    return v;
  }
  numberOrNull(key: KeysOf<T, number | null>): number | null {
    const v = this.obj[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number') this.fail(key, 'a number', v);
    return v;
  }
  boolean(key: KeysOf<T, boolean>): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'a boolean', v);
    return v;
  }
  array(key: KeysOf<T, readonly unknown[]>): unknown[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'an array', v);
    return v;
  }
  object(key: KeysOf<T, object>): Record<string, unknown> {
    const v = this.obj[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v);
    return v as Record<string, unknown>;
  }
  oneOf<K extends KeysOf<T, string>, const A extends T[K] & string>(key: K, allowed: readonly A[]): A {
    const v = this.obj[key];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(key, `one of ${allowed.join(', ')}`, v);
    return v as A;
  }
  private fail(key: string, expected: string, got: unknown): never {
    throw new InternalError(`${this.what}.${key}: expected ${expected} from the server, got ${JSON.stringify(got) ?? 'nothing'}`);
  }
}

/** Each camelCase limit's wire name (the mapped type makes the table complete both ways). */
const LIMIT_KEYS: { readonly [K in keyof WireSessionLimits as CamelCase<K>]-?: K } = {
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

/** camelCase limits → the wire's snake_case (absent ones left out). */
export function limitsToWire(limits: SessionLimits): WireSessionLimits {
  const out: WireSessionLimits = {};
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

/** Reads a {@link SessionView}; throws InternalError naming the field the server got wrong. */
export function readSessionInfo(value: unknown): SessionInfo {
  const r = new Reader<SessionView>(value, 'session');
  return {
    id: r.string('id'),
    language: r.string('language'),
    envKeys: r.array('env_keys').filter((k): k is string => typeof k === 'string'),
    timeout: r.numberOrNull('timeout'),
    idleTTL: r.number('idle_ttl'),
    network: r.boolean('network'),
    limits: limitsFromWire(r.object('limits')),
    state: r.oneOf('state', SESSION_STATES),
    runningExecution: r.stringOrNull('running_execution'),
    queued: r.number('queued'),
    executions: r.number('executions'),
    createdAt: r.string('created_at'),
    lastActiveAt: r.string('last_active_at'),
    expiresAt: r.string('expires_at'),
  };
}

/** Reads a {@link LanguageView}; throws InternalError naming the field the server got wrong. */
export function readLanguageInfo(value: unknown): LanguageInfo {
  const r = new Reader<LanguageView>(value, 'language');
  return {
    language: r.string('language'),
    installed: r.boolean('installed'),
    version: r.stringOrNull('version'),
    reason: r.stringOrNull('reason'),
    defaultMode: r.oneOf('default_mode', MODES),
  };
}

/** Reads an {@link ExecutionView}; throws InternalError naming the field the server got wrong. */
export function readExecutionInfo(value: unknown): ExecutionInfo {
  const r = new Reader<ExecutionView>(value, 'execution');
  const fold = value as Partial<ExecutionView>;
  const error = r.raw('error');
  return {
    executionID: r.string('execution_id'),
    sessionID: r.string('session_id'),
    state: r.oneOf('state', EXECUTION_STATES),
    language: r.string('language'),
    mode: r.oneOf('mode', MODES),
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

/** Reads the answer to a cancel; throws InternalError naming the field the server got wrong. */
export function readCancelResult(value: unknown): CancelResult {
  const r = new Reader<CancelWire>(value, 'cancel');
  return { executionID: r.string('execution_id'), state: r.string('state'), cancelled: r.boolean('cancelled') };
}

/** Reads one directory entry; throws InternalError naming the field the server got wrong. */
export function readFileEntry(value: unknown): FileEntry {
  const r = new Reader<FileEntryWire>(value, 'file');
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
  return new Reader<Record<string, unknown[]>>(value, key).array(key).map(read);
}

/** One named field of an object answer, as an object. */
export function readField(value: unknown, key: string, what: string): unknown {
  return new Reader<Record<string, unknown>>(value, what).raw(key);
}

/** An agent run's state and the fold of its log so far (`GET /api/agent-runs/{id}`). */
export interface AgentRunInfo extends AgentResult {
  sessionId: string;
  state: AgentRunState;
  model: string;
  maxTurns: number;
  tools: AgentTool[];
  lastSeq: number;
  createdAt: string;
  finishedAt: string | null;
}

/** Reads an {@link AgentRunView}; throws InternalError naming the field the server got wrong. */
export function readAgentRunInfo(value: unknown): AgentRunInfo {
  const r = new Reader<AgentRunView>(value, 'agent run');
  const runId = r.string('run_id');
  const usage = r.object('usage');
  const view = value as AgentRunView;
  const fold: AgentRunResult = {
    run_id: runId,
    text: r.string('text'),
    reason: endReason(r.stringOrNull('reason')),
    turns: r.number('turns'),
    total_tokens: r.number('total_tokens'),
    // Extensions of the contract's fold: tolerated when absent.
    tool_calls: Array.isArray(view.tool_calls) ? view.tool_calls : [],
    usage: {
      prompt_tokens: typeof usage['prompt_tokens'] === 'number' ? usage['prompt_tokens'] : 0,
      completion_tokens: typeof usage['completion_tokens'] === 'number' ? usage['completion_tokens'] : 0,
      total_tokens: typeof usage['total_tokens'] === 'number' ? usage['total_tokens'] : 0,
    },
    error: typeof view.error === 'object' && view.error !== null ? view.error : null,
    gap: view.gap === true,
  };
  return {
    ...toAgentResult(fold, runId),
    sessionId: r.string('session_id'),
    state: r.oneOf('state', AGENT_RUN_STATES),
    model: r.string('model'),
    maxTurns: r.number('max_turns'),
    tools: r.array('tools').filter((t): t is AgentTool => (AGENT_TOOLS as readonly unknown[]).includes(t)),
    lastSeq: r.number('last_seq'),
    createdAt: r.string('created_at'),
    finishedAt: r.stringOrNull('finished_at'),
  };
}

function endReason(value: string | null): AgentEndReason | null {
  if (value === null) return null;
  if (!(AGENT_END_REASONS as readonly string[]).includes(value)) throw new InternalError(`agent run.reason: expected one of ${AGENT_END_REASONS.join(', ')} from the server, got ${JSON.stringify(value)}`);
  return value as AgentEndReason;
}
