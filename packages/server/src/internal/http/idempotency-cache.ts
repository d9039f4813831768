/**
 * Remembers which execution a run request with an `Idempotency-Key` created, per client, for
 * 24 hours, so a retried request replays that execution instead of running the code twice.
 * Bounded: at most `maxEntries` keys, the oldest forgotten first.
 */

export class IdempotencyCache {
  private readonly entries = new Map<string, { executionID: string; at: number }>();

  constructor(
    private readonly ttlMs = 24 * 3600 * 1000,
    private readonly maxEntries = 100_000,
  ) {}

  get(owner: string | null, key: string): string | undefined {
    const k = `${owner ?? ''}\u0000${key}`;
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.entries.delete(k);
      return undefined;
    }
    return e.executionID;
  }

  set(owner: string | null, key: string, executionID: string): void {
    const k = `${owner ?? ''}\u0000${key}`;
    this.entries.delete(k);
    this.entries.set(k, { executionID, at: Date.now() });
    // Maps iterate in insertion order: the first keys are the oldest.
    for (const old of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(old);
    }
  }
}
