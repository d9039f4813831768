/**
 * The CLI's two output streams while an execution streams: the program's stdout and stderr go
 * through byte for byte, `sluice:` notes start on a line of their own, and on a terminal a
 * progress bar stays on the bottom line, erased before anything else is written to the terminal
 * and drawn again below it. Writes wait for `drain`, so a slow reader slows the SDK's reads
 * instead of filling memory. A closed stdout (`| head`) is reported once through `onClosed`.
 */
import type { Writable } from 'node:stream';
import { renderProgressBar, type ProgressState } from './progress-bar.js';

/** What the terminal writes to: process.stdout and process.stderr, or any stream shaped like them. */
export type OutputStream = Writable & { isTTY?: boolean | undefined; columns?: number | undefined };

/** Why our own output failed: its reader went away (EPIPE), or another write error. */
export type OutputFailure = 'broken_pipe' | 'io_error';

const ERASE_LINE = '\r\x1b[K';

export class Terminal {
  /** Set once writing failed; later writes are dropped. */
  failure: OutputFailure | undefined;
  /** The last byte written to stderr ended a line (or nothing was written yet). */
  private stderrAtLineStart = true;
  /** The same for whatever was written to the terminal (stdout and stderr may both be it). */
  private terminalAtLineStart = true;
  private barShown = false;
  private latest: ProgressState | undefined;
  private readonly barEnabled: boolean;
  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (this.failure !== undefined) return;
    this.failure = err.code === 'EPIPE' ? 'broken_pipe' : 'io_error';
    this.onClosed(this.failure);
  };

  constructor(
    private readonly out: OutputStream,
    private readonly err: OutputStream,
    opts: { progressBar: boolean },
    private readonly onClosed: (why: OutputFailure) => void = () => {},
  ) {
    this.barEnabled = opts.progressBar && err.isTTY === true;
    out.on('error', this.onError);
    err.on('error', this.onError);
  }

  /** Writes the program's stdout. */
  stdout(text: string): Promise<void> {
    return this.emit(this.out, text);
  }

  /** Writes the program's stderr. */
  stderr(text: string): Promise<void> {
    return this.emit(this.err, text);
  }

  /** Writes `sluice: <text>` on stderr, on a line of its own. */
  note(text: string): Promise<void> {
    const midLine = !this.stderrAtLineStart || (this.err.isTTY === true && !this.terminalAtLineStart);
    return this.emit(this.err, `${midLine ? '\n' : ''}sluice: ${text}\n`);
  }

  /** Shows a progress event on the bar (a terminal only; elsewhere it is only in --json). */
  progress(p: ProgressState): void {
    if (!this.barEnabled || this.failure !== undefined) return;
    this.latest = p;
    // Mid-line the bar would overwrite the program's unfinished line: it waits for the newline.
    if (this.barShown || this.terminalAtLineStart) this.drawBar();
  }

  /** Erases the bar for good (the execution is over). */
  clearProgress(): void {
    this.latest = undefined;
    this.eraseBar();
  }

  /** Stops listening to the streams (the bar is erased). */
  dispose(): void {
    this.clearProgress();
    this.out.off('error', this.onError);
    this.err.off('error', this.onError);
  }

  private async emit(stream: OutputStream, text: string): Promise<void> {
    if (text === '' || this.failure !== undefined || stream.destroyed) return;
    const tty = stream.isTTY === true;
    if (tty) this.eraseBar();
    const endsLine = text.endsWith('\n');
    if (stream === this.err) this.stderrAtLineStart = endsLine;
    if (tty) this.terminalAtLineStart = endsLine;
    await write(stream, text);
    if (tty && endsLine && this.latest !== undefined) this.drawBar();
  }

  private drawBar(): void {
    if (this.latest === undefined || this.failure !== undefined) return;
    // A pseudo-terminal nobody sized (script(1) writing to a pipe) reports 0 columns.
    const columns = (this.err.columns ?? 0) > 0 ? (this.err.columns ?? 80) : 80;
    const line = renderProgressBar(this.latest, columns);
    if (line === null) {
      this.eraseBar();
      return;
    }
    this.err.write(`${ERASE_LINE}${line}\x1b[K`);
    this.barShown = true;
  }

  private eraseBar(): void {
    if (!this.barShown) return;
    this.barShown = false;
    if (this.failure === undefined && !this.err.destroyed) this.err.write(ERASE_LINE);
  }
}

/** Writes honouring backpressure: resolves once the stream takes more (or fails, or closes). */
export function write(stream: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  if (stream.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}
