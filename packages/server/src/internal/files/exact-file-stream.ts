/**
 * A download's body: exactly the `size` bytes that `fstat` reported when the file was opened,
 * read by position from that one open file. A download sends `Content-Length` before its first
 * byte, and on a kept-alive connection the client finds the next answer by that length, so the
 * body must match it whatever the sandbox does to the file meanwhile: bytes appended after the
 * stat are never sent, and a file that shrinks below `size` mid-read fails the stream with
 * `FileShrankError` (the route then drops the connection: a short body must not pass for whole).
 */
import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';

/** Bytes read per chunk (Node's default stream chunk for files). */
const CHUNK_BYTES = 64 * 1024;

/** The file ended before the length the stream promised. */
export class FileShrankError extends Error {
  override readonly name = 'FileShrankError';
  constructor(
    readonly expectedBytes: number,
    readonly gotBytes: number,
  ) {
    super(`the file shrank to ${gotBytes} bytes while it was read (expected ${expectedBytes})`);
  }
}

/**
 * A readable of exactly `size` bytes of `fh`, from offset 0; it closes `fh` when it ends or is
 * destroyed. `shrank` makes the error for a file that ended early (default `FileShrankError`).
 */
export class ExactFileStream extends Readable {
  private position = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly shrank: (gotBytes: number) => Error = (got) => new FileShrankError(size, got),
  ) {
    super({ highWaterMark: CHUNK_BYTES });
  }

  override _read(): void {
    const want = Math.min(CHUNK_BYTES, this.size - this.position);
    if (want <= 0) {
      this.push(null);
      return;
    }
    this.fh.read(Buffer.allocUnsafe(want), 0, want, this.position).then(
      ({ bytesRead, buffer }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(this.shrank(this.position));
          return;
        }
        this.position += bytesRead;
        this.push(bytesRead === want ? buffer : buffer.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.fh.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }
}
