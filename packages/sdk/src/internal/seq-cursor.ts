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

  /**
   * True when `seq` is the very next one (or a `gap` starting there), without advancing: for
   * channels where an event from an older subscription may overtake the replay of a newer one
   * (a WebSocket resubscription), anything else is dropped and arrives again in order.
   */
  follows(seq: number, gapFrom?: number): boolean {
    if (seq === this.last + 1) return true;
    return gapFrom !== undefined && gapFrom <= this.last + 1 && seq > this.last;
  }

  /** Moves the cursor to `seq` (after {@link follows} said yes). */
  advance(seq: number): void {
    if (seq > this.last) this.last = seq;
  }

  /** The first seq still wanted (`?from=` / WebSocket `subscribe.from`). */
  get next(): number {
    return this.last + 1;
  }
}
