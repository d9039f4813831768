/**
 * An execution's (or agent run's) Redis log as an API node serves it: when Redis lost the log (restarted without
 * its data; docs/scale-out.md), a follower does not just stop. After the `gap` the reader gives
 * for the events it knew of, the stream gets an `error` (SANDBOX_UNAVAILABLE: the log is gone)
 * and a `done` with `reason: "sandbox_lost"`: the worker fences itself off when Redis loses its
 * lease (it kills the execution's processes), so the execution did end, and nothing of it can be
 * read any more. These two events exist only on this stream (there is no log left to store
 * them in); their seqs follow the last one the client got. A fold (scan: the buffered answer,
 * GET /api/executions/{id}, GET /api/agent-runs/{id}) ends with the same two. Every other failure (Redis
 * unreachable) is thrown as before: the stream then ends without `done`, "unknown: reconnect".
 * An agent run's log ends likewise, with `error` and `end` (`reason: "error"`).
 */
import { formatDuration, type AgentEvent, type ExecutionEvent, type TokenUsage } from '@sluice/protocol';
import type { EvictedEvents } from '@sluice/protocol';
import type { NewEvent } from '../execution/event-log.js';
import { seqOf, typeOf, type LogEntry, type LoggedEvent, type ReadableLog } from '../execution/readable-log.js';
import { RedisLogError } from '../redis/redis-log.js';

/** How one follower of a lost log ends it: it sees each entry read, then gives the closing entries from seq `next`. */
export interface LostEnding<E extends LoggedEvent> {
  see(entry: LogEntry<E['type']>): void;
  end(next: number, why: string): LogEntry<E['type']>[];
}

/** A Redis log whose followers end with `ending()`'s events when Redis lost it (see above). */
export class FollowUntilLost<E extends LoggedEvent> implements ReadableLog<E> {
  constructor(
    private readonly log: ReadableLog<E>,
    private readonly ending: () => LostEnding<E>,
  ) {}

  get closed(): boolean {
    return this.log.closed;
  }

  get lastSeq(): number {
    return this.log.lastSeq;
  }

  async *follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry<E['type']>[]> {
    let next = Math.max(1, Math.floor(from));
    const ending = this.ending();
    try {
      for await (const batch of this.log.follow(from, signal)) {
        for (const e of batch) {
          next = e.seq + 1;
          ending.see(e);
        }
        yield batch;
      }
    } catch (err) {
      if (!(err instanceof RedisLogError) || err.reason !== 'lost') throw err;
      yield ending.end(next, err.message);
    }
  }

  /** The held events; when Redis lost the log, the same closing events as follow() ends with, so a buffered answer says what a stream says. */
  async *scan(onEvicted: (evicted: EvictedEvents) => void): AsyncGenerator<string[]> {
    let next = 1;
    const ending = this.ending();
    try {
      for await (const held of this.log.scan(onEvicted)) {
        for (const json of held) {
          // Not parsed whole: the fold that reads these parses each once already.
          const seq = seqOf(json);
          next = seq + 1;
          ending.see({ seq, type: typeOf(json) as E['type'], json });
        }
        yield held;
      }
    } catch (err) {
      if (!(err instanceof RedisLogError) || err.reason !== 'lost') throw err;
      yield ending.end(Math.max(next, this.log.lastSeq + 1), err.message).map((e) => e.json);
    }
  }
}

/** An execution's Redis log: a lost one ends with `error` and `done` `sandbox_lost`. */
export class EndsWhenLost extends FollowUntilLost<ExecutionEvent> {
  constructor(log: ReadableLog<ExecutionEvent>) {
    super(log, () => {
      let startedAt: number | null = null;
      return {
        see: (e) => {
          if (e.type === 'start') startedAt = (JSON.parse(e.json) as { ts: number }).ts;
        },
        end: (next, why) => lostEnding(next, startedAt, why),
      };
    });
  }
}

/**
 * An agent run's Redis log: a lost one ends with an `error` (SANDBOX_UNAVAILABLE) and `end`
 * (`reason: "error"`), as the reaper ends a dead worker's runs (agentLostEvents).
 */
export class AgentEndsWhenLost extends FollowUntilLost<AgentEvent> {
  constructor(log: ReadableLog<AgentEvent>) {
    super(log, () => {
      const tally = new AgentTally();
      return {
        see: (e) => tally.see(e.type, e.json),
        end: (next, why) => {
          const now = Date.now();
          return agentLostEvents(`the agent run's event log was lost (${why}); what happened after the events above cannot be read`, tally).map((ev, i) => {
            const full = { ...ev, seq: next + i, ts: now } as AgentEvent;
            return { seq: full.seq, type: full.type, json: JSON.stringify(full) };
          });
        },
      };
    });
  }
}

/** What an agent run's `end` reports, counted from the events read (turns begun, tokens used). */
export class AgentTally {
  turns = 0;
  readonly usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

  see(type: string, json: string): void {
    if (type === 'turn_start') this.turns = Math.max(this.turns, (JSON.parse(json) as { turn: number }).turn);
    else if (type === 'turn_end') {
      const { usage } = JSON.parse(json) as { usage: TokenUsage };
      this.usage.prompt_tokens += usage.prompt_tokens;
      this.usage.completion_tokens += usage.completion_tokens;
      this.usage.total_tokens += usage.total_tokens;
    }
  }
}

/**
 * The two events that end an agent run whose worker (or log) was lost: an `error` with code
 * SANDBOX_UNAVAILABLE naming `sandbox_lost`, then `end` with `reason: "error"` (the contract's
 * reasons have no `sandbox_lost` for agent runs; docs/scale-out.md).
 */
export function agentLostEvents(why: string, tally: AgentTally): [NewEvent<AgentEvent>, NewEvent<AgentEvent>] {
  return [
    { type: 'error', error: `sandbox_lost: ${why}`, code: 'SANDBOX_UNAVAILABLE' },
    { type: 'end', text: '', total_tokens: tally.usage.total_tokens, usage: { ...tally.usage }, turns: tally.turns, reason: 'error' },
  ];
}

/** The `error` and `done` that end a stream whose log Redis lost, from seq `next`. */
export function lostEnding(next: number, startedAt: number | null, why: string): LogEntry<ExecutionEvent['type']>[] {
  const now = Date.now();
  const ms = startedAt === null ? 0 : Math.max(0, now - startedAt);
  const error: ExecutionEvent = {
    type: 'error',
    seq: next,
    ts: now,
    error: `the execution's event log was lost (${why}); what it printed after the events above cannot be read`,
    code: 'SANDBOX_UNAVAILABLE',
  };
  const done: ExecutionEvent = { type: 'done', seq: next + 1, ts: now, exit_code: null, reason: 'sandbox_lost', duration: formatDuration(ms), duration_ms: ms };
  return [
    { seq: error.seq, type: error.type, json: JSON.stringify(error) },
    { seq: done.seq, type: done.type, json: JSON.stringify(done) },
  ];
}
