/**
 * What runs one execution's code, a sandboxed process (process-runner.ts) or a cell of the
 * session's kernel (kernel/kernel.ts), seen the same way by the execution that steers it: it
 * streams into a RunSink, takes stdin, stops on request, and ends with one RunnerOutcome once
 * nothing of the code runs any more.
 */
import type { OutputStream } from '@sluice/protocol';
import type { ChannelEvent } from './channel/events-channel.js';
import type { CPUBudgetWatch } from './cgroups/cpu-budget.js';

/** Where a run's output, channel events and notes go. */
export interface RunSink {
  /** Raw bytes the code wrote, in the order read. */
  output(stream: OutputStream, chunk: Buffer): void;
  /** An event from the code → Sluice channel, placed after the output read before it. */
  event(e: ChannelEvent): void;
  /** A note for the user (a malformed channel line, kernel trouble), shown on stderr. */
  note(text: string): void;
}

/** How a run ended, as its runner saw it. */
export interface RunnerOutcome {
  /** The program's status (128 + n for signal n); null when it never ran or reported none. */
  exitCode: number | null;
  /** The signal's name when the program died of one. */
  signal: string | null;
  /** Set when the sandbox or kernel could not start: the whole sentence for the `error` event. */
  setupError: string | null;
  /** The memory limit's OOM killer ended the program itself. */
  oomKilled: boolean;
  /** Other processes of the run the OOM killer ended (a child): worth a note. */
  oomKills: number;
  /** Forks the pids limit refused. */
  pidsMaxHits: number;
  /** Kernel mode: the kernel's state was lost during the run (null: it was not, or no kernel). */
  kernelRestart: KernelRestart | null;
}

/** Why a kernel's state was lost during a cell. */
export interface KernelRestart {
  /** The kernel process died during the cell (a signal, its own exit, the OOM killer, a kill). */
  died: boolean;
  /** The cell closed or redirected the kernel's stdout or stderr, so it was restarted. */
  broken: OutputStream | null;
}

/** A running execution's code. */
export interface Runner {
  /** Resolves once the code is done and none of its processes is left. */
  readonly done: Promise<RunnerOutcome>;
  /** Stops the code: gracefully first, then for good after `graceMs`. Idempotent. */
  stop(graceMs: number): void;
  /** Writes to the code's stdin (bounded by the caller with `stdinBacklog`). */
  writeStdin(data: string): void;
  /** Closes the code's stdin. */
  endStdin(): void;
  /** stdin bytes sent that the code has not read yet. */
  readonly stdinBacklog: number;
  /** Watches the CPU time the run spends; null where there is no cgroup to count it. */
  watchCPU(budgetNs: number, onExceeded: () => void): CPUBudgetWatch | null;
}

/** One execution's code and input, as a runner takes it. */
export interface RunnerRequest {
  /** A unique id: names the run's cgroup. */
  id: string;
  code: string;
  /** The whole of its stdin (then end of file); undefined keeps stdin open for writeStdin. */
  stdin: string | undefined;
  /** Variables for this run only, over the session's. */
  env: Record<string, string>;
}
