/**
 * Reads the code → Sluice channel (SLUICE_EVENTS_FD): one JSON object per line, `progress` and
 * `result` from the helpers. A line that is not a valid event becomes a short `sluice:` note on
 * stderr, never an error: the program's own bug must not end its execution.
 *
 * Order: lines are taken in the check phase after the poll that read them (`setImmediate`), so
 * output the program wrote before an event, readable in that same poll, is in the log first. A
 * line with `"sync": true` is acknowledged (`sink.ack`) once placed; the helpers wait for that
 * byte, so nothing the program prints after the call can overtake its event. A sync line with a
 * `fence` id (a kernel's end of cell) is also reported to `sink.fence` once placed.
 *
 * Fairness and bounds: at most `sliceBytes` of lines are handled per turn of the event loop, so
 * a flood on one channel cannot starve other sessions' streams; past `maxBacklogBytes` waiting,
 * the source is paused (the program blocks on its full socket) until the backlog is handled. A
 * line may be up to `maxLineBytes` (a PNG result is big); a longer one is skipped up to its
 * newline and reported (and acknowledged, in case a helper waits on it). At most `maxNotes`
 * notes per execution, then one summary.
 */
import { StringDecoder } from 'node:string_decoder';

export type ChannelEvent =
  | { type: 'progress'; message?: string; percent?: number; data?: unknown }
  | { type: 'result'; data: Record<string, unknown> };

/** What the channel is read from: paused while its backlog is over the bound. */
export interface ChannelSource {
  pause(): void;
  resume(): void;
}

export interface ChannelSink {
  event(e: ChannelEvent): void;
  /** A line was not a valid event; `note` says why, for the program's author. */
  malformed(note: string): void;
  /** `count` sync lines were placed: answer each with one byte. */
  ack?(count: number): void;
  /**
   * A sync line with a `fence` id (a kernel's end of cell, `line` the whole of it) was placed:
   * everything written before it is in.
   */
  fence?(id: string, line: Readonly<Record<string, unknown>>): void;
}

export interface LineReaderOptions {
  maxLineBytes?: number;
  sliceBytes?: number;
  maxBacklogBytes?: number;
}

/**
 * Splits a channel's bytes into lines and hands them to `onLine` a bounded slice per turn of
 * the event loop. Shared by the events channel and a kernel's control socket.
 */
export class LineReader {
  private readonly decoder = new StringDecoder('utf8');
  private readonly maxLineBytes: number;
  private readonly sliceBytes: number;
  private readonly maxBacklogBytes: number;
  private queue: Buffer[] = [];
  private queued = 0;
  private partial = '';
  private skipping = false;
  private scheduled: NodeJS.Immediate | null = null;
  private paused = false;
  private source: ChannelSource | null = null;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onSkipped: () => void,
    opts: LineReaderOptions = {},
  ) {
    this.maxLineBytes = opts.maxLineBytes ?? 16 * 1024 * 1024;
    this.sliceBytes = opts.sliceBytes ?? 64 * 1024;
    this.maxBacklogBytes = opts.maxBacklogBytes ?? 1024 * 1024;
  }

  /** Where the bytes come from, so that a backlog can pause it. */
  attach(source: ChannelSource): void {
    this.source = source;
    if (this.paused) source.pause();
  }

  /** Takes bytes as read; they are handled from the next check phase on. */
  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.paused && this.queued > this.maxBacklogBytes) {
      this.paused = true;
      this.source?.pause();
    }
    this.scheduled ??= setImmediate(() => this.drain(this.sliceBytes));
  }

  /** Handles everything queued now (a cell's end, the program's exit). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.drain(Infinity);
  }

  /** End of the channel: everything queued, and a last line without its newline, still count. */
  end(): void {
    this.flush();
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (!this.skipping && rest.trim() !== '') this.onLine(rest);
    this.skipping = false;
  }

  private drain(budget: number): void {
    this.scheduled = null;
    let spent = 0;
    while (this.queue.length > 0 && spent < budget) {
      let chunk = this.queue[0] as Buffer;
      if (chunk.length > budget - spent) {
        // Cut at a newline within the budget when there is one, so a slice ends on a line.
        const nl = chunk.lastIndexOf(0x0a, budget - spent - 1);
        const cut = nl >= 0 ? nl + 1 : Math.min(chunk.length, Math.max(1, budget - spent));
        this.queue[0] = chunk.subarray(cut);
        chunk = chunk.subarray(0, cut);
      } else {
        this.queue.shift();
      }
      this.queued -= chunk.length;
      spent += chunk.length;
      this.take(chunk);
    }
    if (this.queue.length > 0) this.scheduled = setImmediate(() => this.drain(this.sliceBytes));
    else if (this.paused) {
      this.paused = false;
      this.source?.resume();
    }
  }

  private take(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    while (text.length > 0) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (!this.skipping) this.partial += text;
        if (this.partial.length > this.maxLineBytes) {
          this.partial = '';
          this.skipping = true;
        }
        return;
      }
      const skipped = this.skipping;
      const line = skipped ? '' : this.partial + text.slice(0, nl);
      this.partial = '';
      this.skipping = false;
      text = text.slice(nl + 1);
      if (skipped) this.onSkipped();
      else this.onLine(line);
    }
  }
}

export class EventsChannel {
  private readonly reader: LineReader;
  private notes = 0;
  private suppressed = 0;
  private acks = 0;
  private ackScheduled = false;

  constructor(
    private readonly sink: ChannelSink,
    maxLineBytes = 16 * 1024 * 1024,
    private readonly maxNotes = 20,
    opts: Omit<LineReaderOptions, 'maxLineBytes'> = {},
  ) {
    this.reader = new LineReader(
      (line) => this.line(line),
      () => {
        this.note(`a line longer than ${maxLineBytes} bytes was skipped`);
        this.ack();
      },
      { ...opts, maxLineBytes },
    );
  }

  attach(source: ChannelSource): void {
    this.reader.attach(source);
  }

  write(chunk: Buffer): void {
    this.reader.write(chunk);
  }

  /** Handles every line read so far, now. */
  flush(): void {
    this.reader.flush();
    this.sendAcks();
  }

  /** End of the channel: a last line without its newline still counts. */
  end(): void {
    this.reader.end();
    this.sendAcks();
    if (this.suppressed > 0) this.sink.malformed(`${this.suppressed} more malformed line(s) on SLUICE_EVENTS_FD were ignored`);
    this.suppressed = 0;
  }

  private line(raw: string): void {
    const line = raw.trim();
    if (line === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.note(`not JSON: ${preview(line)}`);
    }
    const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
    const sync = o?.['sync'] === true;
    const r = parseChannelMessage(v);
    if (typeof r === 'string') this.note(r);
    else if (r !== null) this.sink.event(r);
    else if (o && typeof o['fence'] === 'string') this.sink.fence?.(o['fence'], o);
    if (sync) this.ack();
  }

  private ack(): void {
    this.acks++;
    // One write for all the lines of this turn.
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => this.sendAcks());
  }

  private sendAcks(): void {
    this.ackScheduled = false;
    const n = this.acks;
    this.acks = 0;
    if (n > 0) this.sink.ack?.(n);
  }

  private note(why: string): void {
    if (this.notes >= this.maxNotes) {
      this.suppressed++;
      return;
    }
    this.notes++;
    this.sink.malformed(`ignored a line on SLUICE_EVENTS_FD: ${why}`);
  }
}

/**
 * Validates one decoded line: an event, null for a line that only asks for its acknowledgement
 * (`{"type":"sync"}`, a fence: everything before it is placed), or a string that says what is
 * wrong with it.
 */
export function parseChannelMessage(v: unknown): ChannelEvent | null | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected a JSON object';
  const o = v as Record<string, unknown>;
  switch (o['type']) {
    case 'progress': {
      const out: ChannelEvent & { type: 'progress' } = { type: 'progress' };
      const { message, percent, data } = o;
      if (message !== undefined && message !== null) {
        if (typeof message !== 'string') return `progress.message: expected a string, got ${typeof message}`;
        out.message = message;
      }
      if (percent !== undefined && percent !== null) {
        if (typeof percent !== 'number' || !Number.isFinite(percent)) return `progress.percent: expected a number, got ${JSON.stringify(percent)}`;
        out.percent = Math.min(100, Math.max(0, percent));
      }
      if (data !== undefined) out.data = data;
      return out;
    }
    case 'result': {
      const data = o['data'];
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'result.data: expected an object of MIME type → value';
      const bundle = data as Record<string, unknown>;
      const types = Object.keys(bundle);
      if (types.length === 0) return 'result.data: expected at least one MIME type';
      for (const t of types) {
        if (!/^[\w.+-]+\/[\w.+-]+$/.test(t)) return `result.data: ${JSON.stringify(t)} is not a MIME type`;
        if (t !== 'application/json' && !t.endsWith('+json') && typeof bundle[t] !== 'string') {
          return `result.data[${JSON.stringify(t)}]: expected a string (base64 for binary types)`;
        }
      }
      return { type: 'result', data: bundle };
    }
    case 'sync':
      return null;
    default:
      return `unknown type ${JSON.stringify(o['type'])}: expected "progress" or "result"`;
  }
}

function preview(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}
