/**
 * What a bounded log dropped, counted as it drops: the `evicted` its readers and folds get. One
 * count for the in-memory EventLog (event-log.ts) and the Redis log's writer (redis/redis-log.ts),
 * so that both say the same of the same drops.
 */
import type { EventType, EvictedEvents } from '@sluice/protocol';

/** Nothing dropped. */
export function noneEvicted(): EvictedEvents {
  return { events: 0, from_seq: null, to_seq: null, types: {}, stdout_bytes: 0, stderr_bytes: 0 };
}

/** The running count of one log's dropped events. */
export class EvictedTally {
  private readonly lost = noneEvicted();

  /** Events dropped so far. */
  get events(): number {
    return this.lost.events;
  }

  /** Counts one dropped event; `outputBytes` is what its content held when it is stdout or stderr. */
  drop(seq: number, type: EventType, outputBytes: number): void {
    // Per event on a log's hot path (a flood being shed): no allocation here.
    const l = this.lost;
    l.events++;
    this.span(seq, seq);
    l.types[type] = (l.types[type] ?? 0) + 1;
    if (type === 'stdout') l.stdout_bytes += outputBytes;
    else if (type === 'stderr') l.stderr_bytes += outputBytes;
  }

  /** Counts `events` dropped between seqs `from` and `to`, as many of each type as `types` says (the rest of unknown type). */
  dropRange(from: number, to: number, events: number, types: EvictedEvents['types'] = {}): void {
    const l = this.lost;
    l.events += events;
    this.span(from, to);
    for (const [name, n] of Object.entries(types)) {
      // Object.entries widens the keys to string: they are the EventTypes given.
      const type = name as EventType;
      l.types[type] = (l.types[type] ?? 0) + n;
    }
  }

  /** What was dropped so far (a copy). */
  copy(): EvictedEvents {
    return { ...this.lost, types: { ...this.lost.types } };
  }

  private span(from: number, to: number): void {
    const l = this.lost;
    l.from_seq = l.from_seq === null ? from : Math.min(l.from_seq, from);
    l.to_seq = l.to_seq === null ? to : Math.max(l.to_seq, to);
  }
}
