/** Where a resumed stream starts, from `?from=` or `Last-Event-ID` (executions and agent runs alike). */
import { ApiError } from '../api-error.js';

/** `?from=N` is the first seq wanted; `Last-Event-ID: N` is the last one seen. */
export function startSeq(from: string | undefined, lastEventID: string | string[] | undefined): number {
  if (from !== undefined) {
    if (!/^\d{1,15}$/.test(from)) throw new ApiError('INVALID_REQUEST', `from: expected a non-negative integer seq, got ${JSON.stringify(from)}`);
    return Math.max(1, Number(from));
  }
  const last = Array.isArray(lastEventID) ? lastEventID[0] : lastEventID;
  if (last !== undefined && last !== '') {
    if (!/^\d{1,15}$/.test(last)) throw new ApiError('INVALID_REQUEST', `Last-Event-ID: expected the integer seq of the last event seen, got ${JSON.stringify(last)}`);
    return Number(last) + 1;
  }
  return 1;
}
