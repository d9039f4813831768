/**
 * Reads the code → Sluice channel (SLUICE_EVENTS_FD): one JSON object per line, `progress` and
 * `result` from the helpers, plus the kernel's own `sluice.*` messages. A line that is not a
 * valid event becomes a short `sluice:` note on stderr, never an error: the program's own bug
 * must not end its execution.
 *
 * Bounds: a line may be up to `maxLineBytes` (a PNG result is big); a longer one is skipped up
 * to its newline and reported. At most `maxNotes` notes per execution, then one summary.
 */
import { StringDecoder } from 'node:string_decoder';

export type ChannelEvent =
  | { type: 'progress'; message?: string; percent?: number; data?: unknown }
  | { type: 'result'; data: Record<string, unknown> };

/** The kernel's messages (see packages/sandbox/runtime/kernels). */
export type KernelMessage =
  | { type: 'sluice.kernel_ready'; language: string; version: string }
  /** `exiting`: the cell ended the kernel itself (process.exit()); it is going away. */
  | { type: 'sluice.cell_done'; nonce: string; status: 'ok' | 'error' | 'interrupted'; exit_code: number; exiting: boolean };

export interface ChannelSink {
  event(e: ChannelEvent): void;
  /** A line was not a valid event; `note` says why, for the program's author. */
  malformed(note: string): void;
  /** Kernel messages; without this hook they count as malformed. */
  kernel?(m: KernelMessage): void;
}

export class EventsChannel {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private skipping = false;
  private notes = 0;
  private suppressed = 0;

  constructor(
    private readonly sink: ChannelSink,
    private readonly maxLineBytes = 16 * 1024 * 1024,
    private readonly maxNotes = 20,
  ) {}

  write(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    while (text.length > 0) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (!this.skipping) this.partial += text;
        if (this.partial.length > this.maxLineBytes) {
          this.note(`a line longer than ${this.maxLineBytes} bytes was skipped`);
          this.partial = '';
          this.skipping = true;
        }
        return;
      }
      const line = this.skipping ? '' : this.partial + text.slice(0, nl);
      const skipped = this.skipping;
      this.partial = '';
      this.skipping = false;
      text = text.slice(nl + 1);
      if (!skipped) this.line(line);
    }
  }

  /** End of the channel: a last line without its newline still counts. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (!this.skipping && rest.trim() !== '') this.line(rest);
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
    const r = parseChannelMessage(v);
    if (typeof r === 'string') return this.note(r);
    if (r.type === 'sluice.kernel_ready' || r.type === 'sluice.cell_done') {
      if (this.sink.kernel) this.sink.kernel(r);
      else this.note(`unknown type ${JSON.stringify(r.type)}: expected "progress" or "result"`);
      return;
    }
    this.sink.event(r);
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

/** Validates one decoded line; a string says what is wrong with it. */
export function parseChannelMessage(v: unknown): ChannelEvent | KernelMessage | string {
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
    case 'sluice.kernel_ready':
      return { type: 'sluice.kernel_ready', language: String(o['language'] ?? ''), version: String(o['version'] ?? '') };
    case 'sluice.cell_done': {
      const { nonce, status, exit_code: code } = o;
      if (typeof nonce !== 'string') return 'sluice.cell_done.nonce: expected a string';
      if (status !== 'ok' && status !== 'error' && status !== 'interrupted') return 'sluice.cell_done.status: expected ok, error or interrupted';
      return {
        type: 'sluice.cell_done',
        nonce,
        status,
        exit_code: typeof code === 'number' && Number.isInteger(code) ? code : status === 'ok' ? 0 : 1,
        exiting: o['exiting'] === true,
      };
    }
    default:
      return `unknown type ${JSON.stringify(o['type'])}: expected "progress" or "result"`;
  }
}

function preview(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}
