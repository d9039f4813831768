/** JSON shapes of sessions and executions in API answers. */
import type { ExecutionResult } from '@sluice/protocol';
import type { Execution } from '../execution/execution.js';
import { foldLog } from '../execution/fold-log.js';
import type { Session } from '../session/session.js';
import { iso } from './context.js';

/** A session as `GET /api/sessions/{id}` shows it (env values are not echoed back). */
export function sessionView(s: Session): Record<string, unknown> {
  return {
    id: s.id,
    language: s.settings.language,
    env_keys: Object.keys(s.settings.env),
    timeout: s.settings.timeoutSec ?? null,
    idle_ttl: s.settings.idleTTLSec,
    network: s.settings.network,
    limits: s.settings.limits,
    state: s.current ? 'running' : 'idle',
    running_execution: s.current?.id ?? null,
    queued: s.queued,
    executions: s.executions,
    kernels: s.liveKernels.map((k) => k.describe()),
    created_at: iso(s.createdAt),
    last_active_at: iso(s.lastActiveAt),
    expires_at: iso(s.expiresAt),
  };
}

/** An execution's state and the fold of its log so far. */
export async function executionView(e: Execution): Promise<ExecutionResult & Record<string, unknown>> {
  return {
    ...(await foldLog(e.log)),
    execution_id: e.id,
    session_id: e.sessionID,
    state: e.state,
    language: e.language,
    mode: e.mode,
    timeout: e.timeoutSec,
    last_seq: e.log.lastSeq,
    created_at: iso(e.createdAt),
    started_at: iso(e.startedAt),
    finished_at: iso(e.finishedAt),
  };
}

/** The buffered answer of a run: the fold of the whole log. */
export async function resultView(e: Execution): Promise<ExecutionResult> {
  const r = await foldLog(e.log);
  r.execution_id = e.id;
  return r;
}
