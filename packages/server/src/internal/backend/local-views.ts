/** The API's views (@sluice/protocol declares them) of this process's sessions and executions. */
import type { ExecutionResult, ExecutionView, SessionView } from '@sluice/protocol';
import type { Execution } from '../execution/execution.js';
import { foldLog } from '../execution/fold-log.js';
import { iso } from '../http/context.js';
import type { Session } from '../session/session.js';

/** A session as `GET /api/sessions/{id}` shows it (env values are not echoed back). */
export function sessionView(s: Session): SessionView {
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
    created_at: isoTime(s.createdAt),
    last_active_at: isoTime(s.lastActiveAt),
    expires_at: isoTime(s.expiresAt),
  };
}

/** An execution's state and the fold of its log so far. */
export async function executionView(e: Execution): Promise<ExecutionView> {
  return {
    ...(await foldLog(e.log)),
    execution_id: e.id,
    session_id: e.sessionID,
    state: e.state,
    language: e.language,
    mode: e.mode,
    timeout: e.timeoutSec,
    last_seq: e.log.lastSeq,
    created_at: isoTime(e.createdAt),
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

/** A time that always exists, as ISO 8601. */
function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
