/**
 * The AgentBackend of an API node (docs/scale-out.md): an agent run starts on the worker that
 * owns the session (the `agent` command, under a run id this node chose and recorded), and its
 * event log is read from Redis (`run:<id>`), so any API node serves any run's stream, view and
 * cancel. The worker holds the conversation and the model endpoint's configuration.
 */
import { AGENT_TOOLS, emptyAgentResult, foldAgentEvent, type AgentEvent, type AgentRequest, type AgentRunResult, type AgentRunView, type AgentTool } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import { OutcomeUnknown } from '../redis/inbox.js';
import type { AgentBackend, AgentCancelOutcome, AgentRunHandle } from '../backend/agent-backend.js';
import { foldHeld } from '../execution/fold-log.js';
import { iso } from '../http/context.js';
import { randomID } from '../random-id.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { SessionRegistry } from '../redis/session-registry.js';
import { AgentEndsWhenLost } from './lost-log.js';
import { found, guard, lostError, RUN_CALL_MS, type RedisBackend } from './redis-backend.js';
import { openWorkLog } from './work-log.js';

export interface RedisAgentsDeps {
  conn: RedisConnection;
  sessions: SessionRegistry;
  /** Finds (or creates) the session, and keeps it alive while a run's stream is read. */
  backend: RedisBackend;
}

/** What a worker records beside an agent run's log (worker-node.ts). */
interface AgentRunMeta {
  model: string;
  max_turns: number;
  tools: AgentTool[];
  created_at: string;
}

export class RedisAgents implements AgentBackend {
  constructor(private readonly deps: RedisAgentsDeps) {}

  start(owner: string | null, sessionID: string, req: AgentRequest): Promise<AgentRunHandle> {
    return guard(async (deadline, state) => {
      const { sessions, backend } = this.deps;
      const rec = await backend.placedSession(owner, sessionID, deadline);
      const id = randomID();
      // The record lives while the run does (its worker shortens it to the log's retention at the end).
      await sessions.addWork('run', id, { owner, sessionID, worker: rec.worker });
      try {
        // The worker replies once the run's log exists in Redis; the start/abandon handshake (inbox.ts) means a 503 with Retry-After never leaves a run behind.
        await backend.send(deadline, rec.worker, { type: 'agent', owner, session_id: sessionID, run_id: id, request: req });
      } catch (err) {
        // Never started (refused, or abandoned unstarted): its record goes.
        if (!(err instanceof OutcomeUnknown)) await sessions.dropWork('run', id).catch(() => {});
        throw err;
      }
      state.sent = () => new OutcomeUnknown(`the agent run started (run ${id}) but Redis failed before its answer; GET /api/agent-runs/${id} tells; do not simply retry, it may have run`);
      backend.touch(owner, sessionID);
      return this.handle(owner, id, sessionID, rec.worker);
    }, RUN_CALL_MS);
  }

  run(owner: string | null, runID: string): Promise<AgentRunHandle> {
    return guard(async () => {
      const rec = await this.deps.sessions.agentRun(owner, runID);
      return this.handle(owner, runID, rec.sessionID, rec.worker);
    });
  }

  has(owner: string | null, runID: string): Promise<boolean> {
    return found(this.run(owner, runID));
  }

  forget(owner: string | null, sessionID: string): Promise<void> {
    return guard(async (deadline) => {
      const rec = await this.deps.sessions.get(owner, sessionID);
      if (!rec) throw new ApiError('NOT_FOUND', `no session with id ${JSON.stringify(sessionID)}`);
      if (rec.state === 'lost') throw lostError(sessionID);
      await this.deps.backend.send(deadline, rec.worker, { type: 'forget_conversation', owner, session_id: sessionID });
    });
  }

  private async handle(owner: string | null, id: string, sessionID: string, worker: string): Promise<AgentRunHandle> {
    const { log, meta: raw, finished, over } = await openWorkLog<AgentEvent, AgentEndsWhenLost>(this.deps.conn, 'run', id, (reader) => new AgentEndsWhenLost(reader));
    const meta = parseMeta(raw);
    return {
      id,
      sessionID,
      log,
      get finished(): Promise<void> {
        return finished();
      },
      // A fold Redis fails answers 503 like any call (a lost log ends as its stream does: lost-log.ts).
      view: (): Promise<AgentRunView> => guard(async () => {
        const acc = { result: emptyAgentResult(), finishedAt: null as number | null };
        await foldHeld<AgentEvent, typeof acc>(
          log,
          acc,
          (a, evicted) => {
            if (evicted.events > 0) a.result.gap = true;
          },
          (a, ev) => {
            foldAgentEvent(a.result, ev);
            if (ev.type === 'end') a.finishedAt = ev.ts;
          },
        );
        const { run_id: _id, ...fold }: AgentRunResult = acc.result;
        return {
          ...fold,
          run_id: id,
          session_id: sessionID,
          state: acc.finishedAt !== null || log.closed ? 'finished' : 'running',
          model: meta?.model ?? '',
          max_turns: meta?.max_turns ?? 0,
          tools: meta?.tools ?? [],
          last_seq: log.lastSeq,
          created_at: meta?.created_at ?? new Date(0).toISOString(),
          finished_at: iso(acc.finishedAt),
        };
      }),
      cancel: (): Promise<AgentCancelOutcome> =>
        guard(async (deadline) => {
          // Finished (perhaps ended by a reaper, or forgotten by its worker): nothing to cancel, as in one process.
          if (await over()) return { state: 'finished', cancelled: false };
          const { cancelled } = await this.deps.backend.send(deadline, worker, { type: 'agent_cancel', owner, session_id: sessionID, run_id: id });
          return { state: cancelled ? 'running' : 'finished', cancelled };
        }),
    };
  }
}

function parseMeta(raw: string | null): AgentRunMeta | null {
  if (raw === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { model, max_turns: maxTurns, tools, created_at: createdAt } = v as Record<string, unknown>;
  if (typeof model !== 'string' || typeof maxTurns !== 'number' || !Array.isArray(tools) || typeof createdAt !== 'string') return null;
  if (!tools.every((t): t is AgentTool => (AGENT_TOOLS as readonly unknown[]).includes(t))) return null;
  return { model, max_turns: maxTurns, tools, created_at: createdAt };
}
