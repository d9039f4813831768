/**
 * Folds an execution's log into the buffered answer without holding the event loop: a log can
 * hold tens of MiB of JSON, and parsing it in one go would stall every other stream of the
 * server for as long. The fold yields after every few MiB parsed. It says what the bounded log
 * dropped (`gap`, `evicted`, and lost output in `truncated` / `dropped_bytes`).
 */
import { addEvicted, emptyResult, foldEvent, type ExecutionEvent, type ExecutionResult } from '@sluice/protocol';
import type { EventLog } from './event-log.js';

/** JSON characters parsed between two yields to the event loop. */
const SLICE_CHARS = 2 * 1024 * 1024;

export async function foldLog(log: EventLog): Promise<ExecutionResult> {
  const acc = emptyResult();
  // Taken together, before any yield: what is held and what was dropped describe the same moment.
  const held = log.snapshot();
  addEvicted(acc, log.evicted);
  let parsed = 0;
  for (const json of held) {
    foldEvent(acc, JSON.parse(json) as ExecutionEvent);
    parsed += json.length;
    if (parsed >= SLICE_CHARS) {
      parsed = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return acc;
}
