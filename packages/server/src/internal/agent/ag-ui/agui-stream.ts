/**
 * One AG-UI stream of an agent run from a given seq: fed the run's log from its start, it maps
 * the events before `from` silently (to learn what the reader already has open), then sends
 * {@link AGUIMapper.reopen}'s RUN_STARTED and re-opening events, then the events from `from` on.
 * A stream from seq 1 is simply the mapping of the whole log.
 */
import type { AgentEvent } from '@sluice/protocol';
import type { AGUIEvent } from './agui-events.js';
import { AGUIMapper, type AGUIRunIDs } from './agui-mapper.js';

export class AGUIStream {
  private readonly mapper: AGUIMapper;
  private reopened: boolean;

  /** `from` is the first seq the reader wants (1 for all of it). */
  constructor(
    ids: AGUIRunIDs,
    private readonly from: number,
  ) {
    this.mapper = new AGUIMapper(ids);
    this.reopened = from <= 1;
  }

  /** True once the stream has sent RUN_FINISHED or RUN_ERROR. */
  get finished(): boolean {
    return this.reopened && this.mapper.finished;
  }

  /** What to send for the next event of the log (in seq order; a log may skip seqs after a gap). */
  push(event: AgentEvent): AGUIEvent[] {
    if (event.seq < this.from) {
      this.mapper.map(event);
      // The prefix is complete: the reader learns where it is now rather than at the next event.
      return event.seq === this.from - 1 ? this.reopen() : [];
    }
    return [...this.reopen(), ...this.mapper.map(event)];
  }

  /** What to send when the log ended before reaching `from` (a reader that had it all). */
  end(): AGUIEvent[] {
    return this.reopen();
  }

  private reopen(): AGUIEvent[] {
    if (this.reopened) return [];
    this.reopened = true;
    return this.mapper.reopen();
  }
}

/** The AG-UI stream of a whole list of events from `from` (tests, and reading a finished log). */
export function mapAGUI(ids: AGUIRunIDs, events: Iterable<AgentEvent>, from = 1): AGUIEvent[] {
  const stream = new AGUIStream(ids, from);
  const out: AGUIEvent[] = [];
  for (const e of events) out.push(...stream.push(e));
  out.push(...stream.end());
  return out;
}
