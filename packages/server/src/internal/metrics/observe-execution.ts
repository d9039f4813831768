/**
 * What the operator sees of one execution: its figures in the metrics and one log line when it
 * ends (with the request id the logger carries, never the code or its output). Reads only the
 * execution's log, from outside: the first output event, then `done`.
 */
import { parseExecutionEvent, type DoneEvent } from '@sluice/protocol';
import type { Execution } from '../execution/execution.js';
import type { ServerMetrics } from './server-metrics.js';

/** The logger the line goes to (a request's child logger carries its `reqId`). */
export interface ExecutionLog {
  info(obj: object, msg: string): void;
}

/** Watches `exec` until it ends; never throws (a failure to observe must not touch the run). */
export function observeExecution(exec: Execution, metrics: ServerMetrics, log: ExecutionLog): void {
  metrics.live(exec);
  void watch(exec, metrics, log).catch(() => metrics.ended(exec, { language: exec.language, mode: exec.mode, reason: 'error', durationSec: null, firstOutputSec: null }));
}

async function watch(exec: Execution, metrics: ServerMetrics, log: ExecutionLog): Promise<void> {
  const firstOutputAt = await firstOutput(exec);
  await exec.finished;
  const done = await doneEvent(exec);
  const reason = done?.reason ?? 'error';
  const started = exec.startedAt;
  metrics.ended(exec, {
    language: exec.language,
    mode: exec.mode,
    reason,
    durationSec: started === null || !done ? null : done.duration_ms / 1000,
    firstOutputSec: started === null || firstOutputAt === null ? null : Math.max(0, firstOutputAt - started) / 1000,
  });
  log.info(
    {
      execution_id: exec.id,
      session_id: exec.sessionID,
      language: exec.language,
      mode: exec.mode,
      reason,
      exit_code: done?.exit_code ?? null,
      duration_ms: done?.duration_ms ?? null,
      queued_ms: (started ?? exec.finishedAt ?? Date.now()) - exec.createdAt,
    },
    'execution finished',
  );
}

/** The `ts` of the first stdout or stderr event; null when the execution printed nothing. */
async function firstOutput(exec: Execution): Promise<number | null> {
  // Stops at the first output: the watcher is not one more reader of everything printed.
  for await (const batch of exec.log.follow(1)) {
    for (const entry of batch) {
      if (entry.type === 'stdout' || entry.type === 'stderr') {
        const parsed = parseExecutionEvent(JSON.parse(entry.json));
        return parsed.ok ? parsed.value.ts : null;
      }
      if (entry.type === 'done') return null;
    }
  }
  return null;
}

/** The execution's `done` (the newest event, which a log always holds). */
async function doneEvent(exec: Execution): Promise<DoneEvent | null> {
  for await (const batch of exec.log.follow(exec.log.lastSeq)) {
    for (const entry of batch) {
      if (entry.type !== 'done') continue;
      const parsed = parseExecutionEvent(JSON.parse(entry.json));
      return parsed.ok && parsed.value.type === 'done' ? parsed.value : null;
    }
  }
  return null;
}
