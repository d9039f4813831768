/**
 * Finds the end of a kernel cell in one output stream. After a cell, the kernel writes
 * `\x1esluice:<nonce>\x1e` to stdout and stderr; every byte before it belongs to the cell, and
 * bytes after it (a background writer between cells) belong to no cell and are dropped.
 *
 * A chunk may end inside the marker: the bytes that could be its start are held back (at most
 * the marker's length) until the next chunk says whether they were.
 */
const MARK = 0x1e;

export class SentinelSplitter {
  private marker: Buffer | null = null;
  private held: Buffer = Buffer.alloc(0);
  private seenMarker = false;
  /** Bytes that arrived while no cell was listening. */
  dropped = 0;

  /** Starts listening for the marker of a new cell. */
  expect(nonce: string): void {
    this.marker = Buffer.from(`\x1esluice:${nonce}\x1e`, 'latin1');
    this.held = Buffer.alloc(0);
    this.seenMarker = false;
  }

  /** True once the current cell's marker went by. */
  get seen(): boolean {
    return this.seenMarker;
  }

  /** Splits a chunk: returns the bytes that belong to the current cell (possibly empty). */
  push(chunk: Buffer): Buffer {
    if (this.marker === null || this.seenMarker) {
      this.dropped += chunk.length;
      return EMPTY;
    }
    const data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = EMPTY;
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      this.seenMarker = true;
      this.dropped += data.length - at - this.marker.length;
      return data.subarray(0, at);
    }
    const keep = partialMarkerSuffix(data, this.marker);
    if (keep > 0) {
      this.held = Buffer.from(data.subarray(data.length - keep));
      return data.subarray(0, data.length - keep);
    }
    return data;
  }

  /** Gives up on the marker (the kernel died): what was held belongs to the cell. */
  flushHeld(): Buffer {
    const h = this.held;
    this.held = EMPTY;
    this.marker = null;
    return h;
  }
}

const EMPTY = Buffer.alloc(0);

/** Length of the longest suffix of `data` that is a proper prefix of `marker`. */
function partialMarkerSuffix(data: Buffer, marker: Buffer): number {
  const from = Math.max(0, data.length - marker.length + 1);
  for (let i = data.indexOf(MARK, from); i >= 0 && i < data.length; i = data.indexOf(MARK, i + 1)) {
    const tail = data.subarray(i);
    if (marker.subarray(0, tail.length).equals(tail)) return tail.length;
  }
  return 0;
}
