/**
 * Remembers which execution a run request with an `Idempotency-Key` created, per client, for
 * 24 hours, so a retried request replays that execution instead of running the code twice.
 * The entry is made before the execution exists (a pending promise), so two requests with one
 * key that race each other still share one execution. Bounded: at most `maxEntries` keys,
 * the oldest forgotten first.
 */

export class IdempotencyCache {
  private readonly entries = new Map<string, { executionID: Promise<string>; at: number }>();

  constructor(
    private readonly ttlMs = 24 * 3600 * 1000,
    private readonly maxEntries = 100_000,
  ) {}

  /**
   * The execution id remembered for this key, or the one `start` creates (remembered at once).
   * `start` failing forgets the key, so a retry can succeed. `isLive` says whether a remembered
   * execution can still be replayed; if not, `start` runs afresh under the same key.
   */
  async resolve(owner: string | null, key: string, isLive: (id: string) => boolean, start: () => Promise<string>): Promise<string> {
    const k = `${owner ?? ''}\u0000${key}`;
    const known = this.entries.get(k);
    if (known && Date.now() - known.at <= this.ttlMs) {
      const id = await known.executionID.catch(() => null);
      if (id !== null && isLive(id)) return id;
      if (this.entries.get(k) !== known) return this.resolve(owner, key, isLive, start);
    }
    const executionID = start();
    const entry = { executionID, at: Date.now() };
    this.entries.delete(k);
    this.entries.set(k, entry);
    executionID.catch(() => {
      if (this.entries.get(k) === entry) this.entries.delete(k);
    });
    // Maps iterate in insertion order: the first keys are the oldest.
    for (const old of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(old);
    }
    return executionID;
  }
}
