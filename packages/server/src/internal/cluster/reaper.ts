/**
 * What every node of a scale-out deployment does for the workers that die (docs/scale-out.md):
 * each second it looks for workers whose lease ran out; for each, exactly one node (the
 * registry's claim) ends every execution that worker left open with `done`
 * (`exit_code: null`, `reason: "sandbox_lost"`), through endIfOpen, so a worker's own `done` and
 * the reaper's never both land; ends every agent run it left open with `error` (naming
 * sandbox_lost) and `end` (`reason: "error"`), likewise once; marks its sessions `lost`; and
 * frees their sandbox slots. The code is never run again anywhere: at most once.
 */
import { formatDuration, type AgentEvent, type DoneEvent, type ExecutionEvent } from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { NewEvent } from '../execution/event-log.js';
import type { Admission } from '../redis/admission.js';
import type { ClusterRegistry, DeadWorker } from '../redis/cluster-registry.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { endIfOpen } from '../redis/redis-log.js';
import type { SessionRegistry } from '../redis/session-registry.js';
import { AgentTally, agentLostEvents } from './lost-log.js';

export interface ReaperDeps {
  conn: RedisConnection;
  registry: ClusterRegistry;
  sessions: SessionRegistry;
  admission: Admission;
  retentionSec: number;
  log: FastifyBaseLogger;
}

/** Starts reaping until `signal` aborts. */
export function startReaper(deps: ReaperDeps, signal: AbortSignal): void {
  deps.registry.startReaper((dead) => reap(deps, dead), signal, {
    onError: (err) => deps.log.warn({ err }, 'reaping dead workers failed; the next round retries'),
  });
}

/** Ends what one dead worker left. Safe to repeat: endIfOpen ends a log once. */
export async function reap(deps: ReaperDeps, dead: DeadWorker): Promise<void> {
  const { conn, sessions, admission, log } = deps;
  log.warn(
    { worker: dead.id, executions: dead.executions.length, agent_runs: dead.agentRuns.length, sessions: dead.sessions.length },
    'a worker died: its executions end with sandbox_lost, its agent runs with an error, its sessions are lost',
  );
  for (const id of dead.executions) {
    const started = await startedAt(conn, `exec:${id}`);
    const ms = started === null ? 0 : Math.max(0, Date.now() - started);
    const done: NewEvent<ExecutionEvent> = { type: 'done', exit_code: null, reason: 'sandbox_lost', duration: formatDuration(ms), duration_ms: ms } satisfies NewEvent<DoneEvent>;
    await endIfOpen<ExecutionEvent>(conn, `exec:${id}`, done, { retentionSec: deps.retentionSec });
    // Its record now lives as long as its log.
    await sessions.retainWork('exec', id, deps.retentionSec);
  }
  for (const id of dead.agentRuns) {
    const [error, end] = agentLostEvents(`the worker running this agent run (${dead.id}) died; its model calls and tools stopped with it`, await agentTally(conn, `run:${id}`));
    await endIfOpen<AgentEvent>(conn, `run:${id}`, end, { retentionSec: deps.retentionSec, before: error });
    await sessions.retainWork('run', id, deps.retentionSec);
  }
  await sessions.markLost(dead.id, dead.sessions);
  for (const [owner, id] of dead.sessions) await admission.releaseSession(owner, id);
}

/** When the log's `start` event happened (its first event), or null when it has none. */
async function startedAt(conn: RedisConnection, id: string): Promise<number | null> {
  const first = await conn.reader.xrange(conn.logKeys(id).stream, '-', '+', 'COUNT', 1);
  const json = first[0]?.[1][1];
  if (json === undefined) return null;
  const ev = JSON.parse(json) as { type?: unknown; ts?: unknown };
  return ev.type === 'start' && typeof ev.ts === 'number' ? ev.ts : null;
}

/** The turns and tokens of an agent run's log so far, for the `end` the reaper writes. */
async function agentTally(conn: RedisConnection, id: string): Promise<AgentTally> {
  const tally = new AgentTally();
  const stream = conn.logKeys(id).stream;
  let from = '-';
  for (;;) {
    const page = await conn.reader.xrange(stream, from, '+', 'COUNT', 1000);
    for (const [, fields] of page) {
      // Event entries are `j <json>`; the closing marker `c 1` is skipped.
      if (fields[0] !== 'j' || fields[1] === undefined) continue;
      const type = (JSON.parse(fields[1]) as { type?: unknown }).type;
      if (typeof type === 'string') tally.see(type, fields[1]);
    }
    const last = page.at(-1);
    if (page.length < 1000 || !last) return tally;
    from = `(${last[0]}`;
  }
}
