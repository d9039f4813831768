/** Folds an agent run's log into its buffered answer (see fold-log.ts for why it yields). */
import { emptyAgentResult, foldAgentEvent, type AgentEvent, type AgentRunResult } from '@sluice/protocol';
import { foldHeld } from '../execution/fold-log.js';
import type { ReadableLog } from '../execution/readable-log.js';

export function foldAgentLog(log: ReadableLog<AgentEvent>): Promise<AgentRunResult> {
  return foldHeld(log, emptyAgentResult(), (acc, evicted) => {
    if (evicted.events > 0) acc.gap = true;
  }, foldAgentEvent);
}
