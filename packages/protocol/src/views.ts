/**
 * The JSON the HTTP API answers about sessions, executions and languages (docs/api.md). The
 * server builds these shapes and the SDK reads them; both compile against these declarations.
 */
import type { Language, Mode } from './events.js';
import type { AgentRunState, AgentTool } from './agent-events.js';
import type { AgentRunResult } from './agent-fold.js';
import type { ExecutionResult } from './fold.js';
import type { SessionLimits } from './requests.js';

/** What a session is doing: running one of its executions, or waiting for one. */
export const SESSION_STATES = ['idle', 'running'] as const;
/** One of {@link SESSION_STATES}. */
export type SessionState = (typeof SESSION_STATES)[number];

/** Where an execution is in its life; `finished` once its `done` is in the log. */
export const EXECUTION_STATES = ['queued', 'running', 'finished'] as const;
/** One of {@link EXECUTION_STATES}. */
export type ExecutionState = (typeof EXECUTION_STATES)[number];

/** A live kernel of a session, as its view lists it. */
export interface KernelView {
  language: Language;
  state: 'idle' | 'busy';
  /** Cells run since the kernel started. */
  cells: number;
  version: string | null;
}

/** A session as `GET /api/sessions/{id}` (and its create, list and restart) shows it; env values are never echoed. */
export interface SessionView {
  id: string;
  language: Language;
  env_keys: string[];
  /** Default execution timeout of the session, seconds (null: the server's). */
  timeout: number | null;
  /** Seconds without activity after which the session is destroyed. */
  idle_ttl: number;
  network: boolean;
  /** Every limit, with the server's default where the session asked for none. */
  limits: Required<SessionLimits>;
  state: SessionState;
  running_execution: string | null;
  /** Executions waiting behind the running one. */
  queued: number;
  /** Executions the session has run or queued so far. */
  executions: number;
  kernels: KernelView[];
  /** ISO 8601 times. */
  created_at: string;
  last_active_at: string;
  expires_at: string;
}

/** An execution's state and the fold of its log so far (`GET /api/executions/{id}`). */
export interface ExecutionView extends Omit<ExecutionResult, 'execution_id'> {
  execution_id: string;
  session_id: string;
  state: ExecutionState;
  language: Language;
  mode: Mode;
  /** Seconds. */
  timeout: number;
  last_seq: number;
  /** ISO 8601 times; null until it happened. */
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** One runtime of `GET /api/languages`; `reason` says why it is not installed and what to install. */
export interface LanguageView {
  language: Language;
  installed: boolean;
  version: string | null;
  reason: string | null;
  default_mode: Mode;
  modes: readonly Mode[];
}

/** An agent run's state and the fold of its log so far (`GET /api/agent-runs/{id}`). */
export interface AgentRunView extends Omit<AgentRunResult, 'run_id'> {
  run_id: string;
  session_id: string;
  state: AgentRunState;
  model: string;
  max_turns: number;
  tools: AgentTool[];
  last_seq: number;
  /** ISO 8601 times; null until it happened. */
  created_at: string;
  finished_at: string | null;
}
