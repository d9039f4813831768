/**
 * Exactly-once delivery across reconnections: the cursor remembers the last `seq` delivered and
 * lets an event through only if it comes after it. A resumed stream replays from the cursor, and
 * whatever overlaps (a retried start replays from seq 1, a WebSocket resubscription races events
 * still in flight) is dropped here.
 */
export class SeqCursor {
  /** The last seq delivered (0 before any). */
  last: number;

  constructor(last = 0) {
    this.last = last;
  }

  /** True (and advances) when `seq` is new; false for a duplicate or a replayed event. */
  accept(seq: number): boolean {
    if (seq <= this.last) return false;
    this.last = seq;
    return true;
  }

  /** The first seq still wanted (`?from=` / WebSocket `subscribe.from`). */
  get next(): number {
    return this.last + 1;
  }
}
