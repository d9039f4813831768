/**
 * One memory budget for every execution log of the server, running and finished
 * (SLUICE_LOG_BUDGET). Each log reports the bytes it holds as they change; whenever the total
 * goes over the budget, it is brought back under it at once, in this order:
 *   1. running logs drop their superseded progress and their results (the newest progress stays);
 *   2. finished executions are forgotten, the oldest finished first (their logs are released and
 *      their ids answer NOT_FOUND);
 *   3. running logs drop their oldest events, the largest log first.
 * It frees a little more than needed (1/32 of the budget) so that a flood does not pay for a
 * search at every event. Only the newest event of each running log can be left over the budget.
 */
import type { BudgetedLog, LogBudgetSink } from './event-log.js';

export class LogBudget implements LogBudgetSink {
  private held = 0;
  private enforcing = false;
  /** Logs still being written, and finished ones in the order they finished. */
  private readonly running = new Set<BudgetedLog>();
  private readonly finished = new Set<BudgetedLog>();
  /** What to do when a finished log is forgotten (the execution goes). */
  private readonly onRelease = new Map<BudgetedLog, () => void>();

  constructor(readonly maxBytes: number) {}

  /** Bytes all tracked logs hold. */
  get bytes(): number {
    return this.held;
  }

  /** Starts counting a log; `onRelease` runs when the budget forgets it. */
  track(log: BudgetedLog & { useBudget(b: LogBudgetSink): void }, onRelease: () => void): void {
    this.running.add(log);
    this.onRelease.set(log, onRelease);
    log.useBudget(this);
  }

  add(_log: BudgetedLog, delta: number): void {
    this.held += delta;
    if (delta > 0 && this.held > this.maxBytes && !this.enforcing) this.enforce();
  }

  closed(log: BudgetedLog): void {
    if (!this.running.delete(log)) return;
    this.finished.add(log);
  }

  released(log: BudgetedLog): void {
    this.running.delete(log);
    this.finished.delete(log);
    const onRelease = this.onRelease.get(log);
    this.onRelease.delete(log);
    onRelease?.();
  }

  private enforce(): void {
    this.enforcing = true;
    try {
      const target = this.maxBytes - Math.floor(this.maxBytes / 32);
      for (const log of this.running) {
        if (this.held <= target) return;
        log.shed(this.held - target, 'channel');
      }
      for (const log of this.finished) {
        if (this.held <= target) return;
        log.release();
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
