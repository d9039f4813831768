/** The AgentBackend of one process: runs in this process's AgentRuns (a thin layer, same answers). */
import type { AgentRequest, AgentRunView } from '@sluice/protocol';
import type { AgentRun } from '../agent/agent-run.js';
import type { AgentRuns } from '../agent/agent-runs.js';
import { foldAgentLog } from '../agent/fold-agent-log.js';
import { iso } from '../http/context.js';
import type { AgentBackend, AgentRunHandle } from './agent-backend.js';

export class LocalAgents implements AgentBackend {
  constructor(private readonly agents: AgentRuns) {}

  async start(owner: string | null, sessionID: string, req: AgentRequest): Promise<AgentRunHandle> {
    return agentHandle(await this.agents.start(owner, sessionID, req));
  }

  async run(owner: string | null, runID: string): Promise<AgentRunHandle> {
    return agentHandle(this.agents.get(owner, runID));
  }

  async has(owner: string | null, runID: string): Promise<boolean> {
    return this.agents.has(owner, runID);
  }

  async forget(owner: string | null, sessionID: string): Promise<void> {
    this.agents.forget(owner, sessionID);
  }
}

/** A handle on a run of this process: its log is the run's own. */
export function agentHandle(run: AgentRun): AgentRunHandle {
  return {
    id: run.id,
    sessionID: run.sessionID,
    log: run.log,
    finished: run.finished,
    view: () => agentRunView(run),
    cancel: async () => {
      const wasFinished = run.state === 'finished';
      run.cancel();
      return { state: run.state, cancelled: !wasFinished };
    },
  };
}

/** A run's state and the fold of its log so far. */
export async function agentRunView(run: AgentRun): Promise<AgentRunView> {
  const { run_id: _id, ...fold } = await foldAgentLog(run.log);
  return {
    ...fold,
    run_id: run.id,
    session_id: run.sessionID,
    state: run.state,
    model: run.model,
    max_turns: run.maxTurns,
    tools: run.tools,
    last_seq: run.log.lastSeq,
    created_at: iso(run.createdAt) ?? '',
    finished_at: iso(run.finishedAt),
  };
}
