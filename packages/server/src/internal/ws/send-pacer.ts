/**
 * Paces what one WebSocket sends, so a client that does not read cannot make the server buffer
 * without bound. Two kinds of frames, two bounds:
 *
 * - Events. Before each frame a follower calls `room()`; while the socket holds more than
 *   `maxBuffered` bytes not yet handed to the kernel, it waits for the socket to drain. The
 *   follower reads the execution's log, which fills at the program's pace meanwhile: the program
 *   is never slowed, the reader falls behind (and gets a `gap` if the bounded log evicted what it
 *   had not read). The buffer holds at most `maxBuffered` plus one frame per follower.
 * - Replies (`accepted`, `error`, `pong`): one per client message. While more than
 *   `maxReplyBytes` of them are not yet handed to the kernel, the socket stops reading client
 *   messages (TCP pushes back on the client), so requests without reads cannot pile up replies.
 *
 * It also counts frames handed to the kernel: a peer whose count does not move is not reading.
 */

/** What the pacer sends through: a `ws` WebSocket fits. */
export interface PacedSocket {
  readonly bufferedAmount: number;
  /** Sends one text frame; `cb` runs once it has been handed to the kernel, or has failed. */
  send(data: string, cb: (err?: Error) => void): void;
  /** Stops and restarts reading (and emitting) client messages. */
  pause(): void;
  resume(): void;
}

/** What says the socket drained or closed: the raw TCP socket under the WebSocket. */
export interface DrainSource {
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  /** A TCP socket's: Nagle's algorithm off. */
  setNoDelay?(noDelay: boolean): unknown;
  /** A TCP socket's: writes between these go to the kernel together, in one writev. */
  cork?(): void;
  uncork?(): void;
}

/** Event bytes a socket may hold unsent before followers wait (the protocol's 1 MiB). */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Reply bytes a socket may hold unsent before it stops reading client messages. */
export const MAX_REPLY_BYTES = 64 * 1024;
/** How often a waiting follower re-checks, in case the buffer shrank without a `'drain'`. */
const RECHECK_MS = 100;

export class SendPacer {
  private readonly waiters = new Set<() => void>();
  private replyBytes = 0;
  private readingPaused = false;
  private flushedFrames = 0;
  private isClosed = false;

  constructor(
    private readonly socket: PacedSocket,
    private readonly drains: DrainSource,
    private readonly maxBuffered = MAX_BUFFERED_BYTES,
    private readonly maxReplyBytes = MAX_REPLY_BYTES,
  ) {
    drains.on('drain', this.wake);
    drains.on('close', this.onClose);
  }

  /** True while followers must wait before sending another event. */
  get full(): boolean {
    return this.socket.bufferedAmount > this.maxBuffered;
  }

  /** Frames handed to the kernel so far: progress of a peer that reads. */
  get flushed(): number {
    return this.flushedFrames;
  }

  /** True while client messages are not read (replies are backed up). */
  get paused(): boolean {
    return this.readingPaused;
  }

  /** Resolves once there is room for another event frame, the socket closed, or `signal` aborted. */
  async room(signal: AbortSignal): Promise<void> {
    while (this.full && !this.isClosed && !signal.aborted) await this.nextWake(signal);
  }

  /** Sends an event frame (call `room()` first). */
  sendEvent(frame: string): void {
    if (this.isClosed) return;
    this.socket.send(frame, this.onFlushed);
  }

  /** Sends a reply; stops reading client messages while too many reply bytes are unsent. */
  sendReply(text: string): void {
    if (this.isClosed) return;
    const bytes = Buffer.byteLength(text);
    this.replyBytes += bytes;
    this.socket.send(text, () => {
      this.replyBytes -= bytes;
      this.onFlushed();
      if (this.readingPaused && this.replyBytes <= this.maxReplyBytes && !this.isClosed) {
        this.readingPaused = false;
        this.socket.resume();
      }
    });
    if (!this.readingPaused && this.replyBytes > this.maxReplyBytes) {
      this.readingPaused = true;
      this.socket.pause();
    }
  }

  /** Releases waiters and listeners (also done when the socket closes). */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.drains.off('drain', this.wake);
    this.drains.off('close', this.onClose);
    this.wake();
  }

  private readonly onFlushed = (): void => {
    this.flushedFrames++;
  };

  private readonly onClose = (): void => this.close();

  private readonly wake = (): void => {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w();
  };

  private nextWake(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, RECHECK_MS);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }
}
