/**
 * What agent-routes, ag-ui-routes and the WebSocket need of agent runs, and nothing of where
 * they run: LocalAgents (local-agents.ts) runs them in this process's AgentRuns; RedisAgents
 * (cluster/redis-agents.ts) starts them on the worker owning the session and follows their logs
 * in Redis. Errors are ApiErrors, as the routes answer them.
 */
import type { AgentEvent, AgentRequest, AgentRunState, AgentRunView } from '@sluice/protocol';
import type { ReadableLog } from '../execution/readable-log.js';

export interface AgentBackend {
  /** Starts a run in a session (created with defaults when it does not exist, like a run request). */
  start(owner: string | null, sessionID: string, req: AgentRequest): Promise<AgentRunHandle>;
  /** The run, or NOT_FOUND (also when another owner asks, or once it is forgotten). */
  run(owner: string | null, runID: string): Promise<AgentRunHandle>;
  /** True when the owner can still read this run. */
  has(owner: string | null, runID: string): Promise<boolean>;
  /** Forgets the session's conversation (its files and kernels stay); SESSION_BUSY while a run goes on. */
  forget(owner: string | null, sessionID: string): Promise<void>;
}

/** One agent run, as the routes use it. */
export interface AgentRunHandle {
  readonly id: string;
  readonly sessionID: string;
  /** Its event log: every transport follows it directly. */
  readonly log: ReadableLog<AgentEvent>;
  /** Resolves once `end` is in the log. */
  readonly finished: Promise<void>;
  /** Its state and the fold of its log so far (`GET /api/agent-runs/{id}`). */
  view(): Promise<AgentRunView>;
  /** Stops it; `cancelled` is false when it had finished already. Idempotent. */
  cancel(): Promise<AgentCancelOutcome>;
}

export interface AgentCancelOutcome {
  state: AgentRunState;
  cancelled: boolean;
}
