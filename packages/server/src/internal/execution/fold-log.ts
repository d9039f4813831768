/**
 * Folds an execution's log into the buffered answer without holding the event loop: a log can
 * hold tens of MiB of JSON, and parsing it in one go would stall every other stream of the
 * server for as long. The fold yields after every few MiB parsed.
 */
import { emptyResult, foldEvent, type ExecutionEvent, type ExecutionResult } from '@sluice/protocol';
import type { EventLog } from './event-log.js';

/** JSON characters parsed between two yields to the event loop. */
const SLICE_CHARS = 2 * 1024 * 1024;

export async function foldLog(log: EventLog): Promise<ExecutionResult> {
  const acc = emptyResult();
  let parsed = 0;
  for (const entry of log.snapshot()) {
    foldEvent(acc, JSON.parse(entry.json) as ExecutionEvent);
    parsed += entry.json.length;
    if (parsed >= SLICE_CHARS) {
      parsed = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return acc;
}
