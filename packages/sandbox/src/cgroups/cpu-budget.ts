/**
 * Enforces a CPU-time budget across every process of a group by polling its CPU usage
 * (RLIMIT_CPU cannot: it is per process, so four forked workers get four budgets).
 */

/** Anything that reports CPU time used so far, ns (an ExecutionCgroup). */
export interface CPUUsageSource {
  cpuUsageNs(): Promise<number | undefined>;
}

/** Options of watchCPUBudget(). */
export interface CPUBudgetOptions {
  /** CPU time allowed, ns. */
  budgetNs: number;
  /** Poll period, ms (default 100). The overshoot is at most about one period of CPU per core. */
  intervalMs?: number;
  /** Stops the watch. */
  signal?: AbortSignal;
  /** Called once, with the usage seen, when it reaches the budget; the watch then stops. */
  onExceeded(usedNs: number): void;
  /** Called when a read fails (the watch keeps going); default: ignore. */
  onError?(err: unknown): void;
}

/** A running watch. */
export interface CPUBudgetWatch {
  /** Stops polling; idempotent. */
  stop(): void;
  /** True once onExceeded has been called. */
  readonly exceeded: boolean;
}

/** Polls `source` until the budget is used up (then calls onExceeded once), stop(), or abort. */
export function watchCPUBudget(source: CPUUsageSource, options: CPUBudgetOptions): CPUBudgetWatch {
  const { budgetNs, signal, onExceeded, onError } = options;
  const intervalMs = options.intervalMs ?? 100;
  if (!(Number.isFinite(budgetNs) && budgetNs > 0)) throw new RangeError(`watchCPUBudget: budgetNs must be a positive number of ns; got ${budgetNs}`);
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) throw new RangeError(`watchCPUBudget: intervalMs must be a positive number; got ${intervalMs}`);
  let stopped = false;
  let exceeded = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    signal?.removeEventListener('abort', stop);
  };
  const poll = async (): Promise<void> => {
    timer = undefined;
    try {
      const used = await source.cpuUsageNs();
      if (stopped) return;
      if (used !== undefined && used >= budgetNs) {
        exceeded = true;
        stop();
        onExceeded(used);
        return;
      }
    } catch (err) {
      if (stopped) return;
      onError?.(err);
    }
    // Re-arm only after the read finished: reads never overlap.
    if (!stopped) schedule();
  };
  const schedule = (): void => {
    timer = setTimeout(() => void poll(), intervalMs);
    // A watch must not keep the process alive on its own.
    timer.unref();
  };
  if (signal?.aborted) stopped = true;
  else {
    signal?.addEventListener('abort', stop, { once: true });
    schedule();
  }
  return {
    stop,
    get exceeded() {
      return exceeded;
    },
  };
}
