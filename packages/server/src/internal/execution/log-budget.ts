/**
 * One memory budget for every execution log of the server, running and finished
 * (SLUICE_LOG_BUDGET). Each log reports the bytes it holds as they change; whenever the total
 * goes over the budget, it is brought back under it at once, in this order:
 *   1. running logs drop their superseded progress and their results (the newest progress stays);
 *   2. finished executions are forgotten, the oldest finished first (their logs are released and
 *      their ids answer NOT_FOUND): first those still in memory, then spilled ones (which hold
 *      only an index);
 *   3. running logs drop their oldest events, the largest log first.
 * It frees a little more than needed (1/32 of the budget) so that a flood does not pay for a
 * search at every event. Only the newest event of each running log can be left over the budget.
 *
 * With a LogDisk, each log is handed to it when it finishes: spilled, it holds (and counts) only
 * its index, so finished logs stop weighing on the budget (log-disk.ts); a running log writes
 * its older events there as it grows, so it holds a bounded window (event-log.ts).
 */
import type { BudgetedLog, LogBudgetSink, SpillableLog, TailSink } from './event-log.js';
import type { LogDisk } from './log-disk.js';

export class LogBudget implements LogBudgetSink {
  private held = 0;
  private enforcing = false;
  /** Logs still being written, and finished ones in the order they finished. */
  private readonly running = new Set<BudgetedLog>();
  private readonly finished = new Set<BudgetedLog>();
  /** Each tracked log, and what to do when it is forgotten (the execution goes). */
  private readonly tracked = new Map<BudgetedLog, { log: SpillableLog; onRelease: () => void }>();

  constructor(
    readonly maxBytes: number,
    private readonly disk: LogDisk | null = null,
  ) {}

  /** Bytes all tracked logs hold. */
  get bytes(): number {
    return this.held;
  }

  /** Starts counting a log; `onRelease` runs when the budget forgets it. */
  track(log: SpillableLog & { useBudget(b: LogBudgetSink): void; useDisk(d: TailSink): void }, onRelease: () => void): void {
    this.running.add(log);
    this.tracked.set(log, { log, onRelease });
    log.useBudget(this);
    if (this.disk) log.useDisk(this.disk);
  }

  add(_log: BudgetedLog, delta: number): void {
    this.held += delta;
    if (delta > 0 && this.held > this.maxBytes && !this.enforcing) this.enforce();
  }

  closed(log: BudgetedLog): void {
    if (!this.running.delete(log)) return;
    this.finished.add(log);
    const t = this.tracked.get(log);
    if (t) this.disk?.spill(t.log);
  }

  released(log: BudgetedLog): void {
    this.running.delete(log);
    this.finished.delete(log);
    const t = this.tracked.get(log);
    this.tracked.delete(log);
    t?.onRelease();
  }

  /** Stops spilling and removes the spilled logs' files (the server is closing). */
  async close(): Promise<void> {
    await this.disk?.close();
  }

  private enforce(): void {
    this.enforcing = true;
    try {
      const target = this.maxBytes - Math.floor(this.maxBytes / 32);
      for (const log of this.running) {
        if (this.held <= target) return;
        log.shed(this.held - target, 'channel');
      }
      // Spilled logs free only their index: forget those still in memory first.
      for (const onDisk of [false, true]) {
        for (const log of this.finished) {
          if (this.held <= target) return;
          if (log.onDisk === onDisk) log.release();
        }
      }
      for (const log of [...this.running].sort((a, b) => b.bytes - a.bytes)) {
        if (this.held <= target) return;
        log.shed(this.held - target, 'any');
      }
    } finally {
      this.enforcing = false;
    }
  }
}
