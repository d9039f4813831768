/**
 * Host uids for sandboxes, one per session, so that RLIMIT_NPROC (counted per host uid) and
 * kill permissions never couple two sessions (docs/sandbox.md; after isolate's first_uid + box id).
 */

export class UIDPool {
  private readonly free: number[] = [];
  private readonly used = new Set<number>();

  /** A pool of `size` uids starting at `first`. */
  constructor(
    readonly first: number,
    readonly size: number,
  ) {
    if (!Number.isInteger(first) || first < 1000 || !Number.isInteger(size) || size < 1) {
      throw new RangeError(`uid pool: expected first >= 1000 and size >= 1, got first=${first} size=${size}`);
    }
    for (let i = size - 1; i >= 0; i--) this.free.push(first + i);
  }

  /** Takes the lowest free uid, or undefined when every uid is in use. */
  acquire(): number | undefined {
    const uid = this.free.pop();
    if (uid !== undefined) this.used.add(uid);
    return uid;
  }

  /** Returns a uid; only call once nothing runs under it any more. */
  release(uid: number): void {
    if (!this.used.delete(uid)) return;
    this.free.push(uid);
  }

  /** uids currently handed out. */
  get inUse(): number {
    return this.used.size;
  }
}
