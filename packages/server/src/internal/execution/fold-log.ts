/**
 * Folds a log into its buffered answer without holding the event loop: a log can hold tens of
 * MiB of JSON, and parsing it in one go would stall every other stream of the server for as
 * long. The fold yields after every few MiB parsed, and reads a spilled log's file in chunks. It
 * says what the bounded log dropped (`gap`, `evicted`, and lost output in `truncated` / `dropped_bytes`).
 */
import { addEvicted, emptyResult, foldEvent, type ExecutionResult, type EvictedEvents } from '@sluice/protocol';
import type { LoggedEvent, ReadableLog } from './readable-log.js';

/** JSON characters parsed between two yields to the event loop. */
const SLICE_CHARS = 2 * 1024 * 1024;

/** An execution's fold. */
export function foldLog(log: ReadableLog): Promise<ExecutionResult> {
  return foldHeld(log, emptyResult(), addEvicted, foldEvent);
}

/**
 * Any log's fold: `lost` records what the log dropped, then `apply` folds each held event.
 * What is held and what was dropped are taken together (ReadableLog.scan): they describe the same moment.
 */
export async function foldHeld<E extends LoggedEvent, A>(log: ReadableLog<E>, acc: A, lost: (acc: A, evicted: EvictedEvents) => void, apply: (acc: A, ev: E) => void): Promise<A> {
  let parsed = 0;
  for await (const held of log.scan((evicted) => lost(acc, evicted))) {
    for (const json of held) {
      apply(acc, JSON.parse(json) as E);
      parsed += json.length;
      if (parsed >= SLICE_CHARS) {
        parsed = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }
  return acc;
}

