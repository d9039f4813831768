/**
 * The pool of session shells (SLUICE_POOL_SIZE): each is a fresh host uid and an empty
 * workspace with a pre-started Python process sandbox and a pre-started Python kernel in it,
 * all for the server's default session settings, so that a new session with those settings
 * starts without mounting a workspace, and its first run without the launch chain's setup
 * (docs/sandbox.md, "Pre-started sandboxes").
 *
 * - A shell has no owner: the session that adopts it (SessionManager.build) is its only user,
 *   and it never comes back; a shell is never shared between sessions or tenants.
 * - Bounded: at most `size` shells; refilled in the background one at a time, never while the
 *   server drains or closes; a shell whose sandbox dies is replaced, with a growing pause
 *   while starting keeps failing. Kernels are pre-started once the pool is full and left alone
 *   for a moment, so a burst of new sessions does not start (and stop) a kernel per shell.
 *   Both wait while executions run (DEFER_MAX_MS at most), not to hold up their output.
 * - It yields to real work: a session that needs a uid when none is free takes one back from a
 *   shell (`evict`), and pooled kernels count against SLUICE_MAX_KERNELS and go first
 *   (`dropKernel`).
 */
import { availableParallelism } from 'node:os';
import { createWorkspace, Kernel, PrestartedProcess, removeWorkspace, runtimeFor, type RunContext, type SandboxHostPaths, type UIDPool, type WorkspaceQuota } from '@sluice/sandbox';
import type { Spares } from './session.js';

/** A pooled shell: what a session adopts. */
export interface Shell {
  uid: number | undefined;
  workspace: string;
  spares: Spares;
}

export interface SessionPoolDeps {
  size: number;
  paths: SandboxHostPaths;
  uidPool: UIDPool | undefined;
  /** The default sessions' workspace quota. */
  quota: WorkspaceQuota;
  /** Whether Python is enabled and installed (else shells hold no sandbox or kernel). */
  python: boolean;
  /** The RunContext a session with the default settings would have in this workspace and uid. */
  context(workspace: string, uid: number | undefined): RunContext;
  /** Room for one more shell under the server's caps (sessions, uids). */
  roomForShell(): boolean;
  /** Room for one more kernel under SLUICE_MAX_KERNELS. */
  roomForKernel(): boolean;
  /** Whether an execution is running or queued: pre-starting waits for a pause (DEFER_MAX_MS at most). */
  busy(): boolean;
  log: { warn(obj: object, msg: string): void };
}

/** Pause between taking a shell and starting its replacement. */
const REFILL_DELAY_MS = 250;

/**
 * A settled pool pre-starts its kernels once no shell has been taken for this long: while sessions
 * keep taking shells (a burst of process runs), each kernel would only be stopped again.
 */
const KERNEL_QUIET_MS = 500;

/** Pooled kernels started at once: one per core. */
const KERNEL_STARTS = Math.max(1, availableParallelism());

/**
 * Pre-starting (a shell, a kernel) is background work that takes the event loop for a fork
 * (~10 ms here) and a core for bwrap and Python's imports: while executions run, it waits for a
 * moment with none, checking every DEFER_POLL_MS, but no longer than DEFER_MAX_MS (a server that
 * is never idle still refills). A line of a running program printed during a pre-start arrived
 * 5–45 ms late (bench/run.mjs's line latency); with this, its p99 is that of a server with no pool.
 */
const DEFER_MAX_MS = 5000;
const DEFER_POLL_MS = 100;

/** Pause after a failed start, doubling up to the last. */
const BACKOFF_MS = [100, 200, 500, 1000, 2000, 5000, 10_000, 30_000];

export class SessionPool {
  private readonly shells: Shell[] = [];
  private filling: Promise<void> | null = null;
  /** Set by evict() while a fill holds a uid: the fill gives its shell back instead of pooling it. */
  private cancelFill = false;
  private timer: NodeJS.Timeout | null = null;
  /** When the pending timer fires: take() brings a long backoff forward. */
  private timerDue = 0;
  private stopped = false;
  private failures = 0;
  /** Removals and dropped kernels still under way: close() waits for them (nothing runs after it). */
  private readonly stopping = new Set<Promise<unknown>>();
  /** Shells whose kernel was started (or tried): never a second one. */
  private readonly kernelTried = new WeakSet<Shell>();
  private lastTakeAt = 0;
  private kernelTimer: NodeJS.Timeout | null = null;
  /** Pooled kernels starting now (at most KERNEL_STARTS). */
  private kernelsStarting = 0;
  /** Since when a due fill, or kernel start, has waited for the executions to pause (0: not waiting). */
  private fillWaitingSince = 0;
  private kernelWaitingSince = 0;

  constructor(private readonly deps: SessionPoolDeps) {}

  /** Shells ready now. */
  get size(): number {
    return this.shells.length;
  }

  /** Kernels the pool holds (running or starting). */
  get kernels(): number {
    return this.shells.filter((s) => s.spares.kernel !== null).length;
  }

  /**
   * Starts filling the pool (after the server's start, and after each change: a session made or
   * gone, a uid given back). Without room for a shell it does nothing: whatever makes room calls it.
   */
  refill(delayMs = 0): void {
    if (this.stopped || this.filling || this.deps.size === 0) return;
    if (this.shells.length >= this.deps.size) return;
    if (this.timer) {
      // A sooner fill replaces a pending long pause (a backoff after failures).
      if (Date.now() + delayMs >= this.timerDue) return;
      clearTimeout(this.timer);
    }
    this.timerDue = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      if (!this.deps.roomForShell()) {
        // No fill now: a later one waits afresh.
        this.fillWaitingSince = 0;
        return this.prestartKernels();
      }
      if (this.deferred('fill')) return this.refill(DEFER_POLL_MS);
      this.filling = this.fillOne().finally(() => {
        this.filling = null;
        this.cancelFill = false;
        if (this.failures > 0) this.refill(BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length) - 1]);
        else this.refill();
      });
    }, delayMs);
    this.timer.unref();
  }

  /** The oldest shell whose sandbox is still up, for a new session; refills behind it. */
  take(): Shell | undefined {
    for (;;) {
      const shell = this.shells.shift();
      if (!shell) break;
      const proc = shell.spares.process;
      if (proc && !proc.usable) {
        void this.destroy(shell);
        continue;
      }
      this.failures = 0;
      this.lastTakeAt = Date.now();
      // Not at once: on a small machine a new shell's start (mounts, a sandbox, a kernel) would
      // compete for the CPU with the first run of the session that just took this one.
      this.refill(REFILL_DELAY_MS);
      return shell;
    }
    this.refill();
    return undefined;
  }

  /**
   * Gives one shell's uid and workspace back (a session needs the uid): a pooled one, else the
   * one being filled; false when there is none.
   */
  async evict(): Promise<boolean> {
    const shell = this.shells.pop();
    if (shell) {
      await this.destroy(shell);
      return true;
    }
    const filling = this.filling;
    if (!filling) return false;
    this.cancelFill = true;
    await filling;
    return true;
  }

  /** Stops one pooled kernel (SLUICE_MAX_KERNELS needs room); false when there is none. */
  dropKernel(): boolean {
    const shell = [...this.shells].reverse().find((s) => s.spares.kernel !== null);
    const k = shell?.spares.kernel;
    if (!shell || !k) return false;
    shell.spares.kernel = null;
    this.track(k.shutdown());
    return true;
  }

  /** Removes a shell taken out of the pool that no session could adopt after all. */
  async discard(shell: Shell): Promise<void> {
    await this.destroy(shell);
  }

  /** Stops refilling (drain); shells already made stay until close(). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.kernelTimer) clearTimeout(this.kernelTimer);
    this.kernelTimer = null;
  }

  /** Stops refilling and removes every shell: sandboxes, kernels, workspaces, uids. */
  async close(): Promise<void> {
    this.stop();
    await this.filling;
    await Promise.all(this.shells.splice(0).map((s) => this.destroy(s)));
    // And every removal begun elsewhere (a dead shell's, a taken one's, a dropped kernel).
    while (this.stopping.size > 0) await Promise.all([...this.stopping]);
  }

  private track(p: Promise<unknown>): void {
    const settled = p.catch(() => undefined);
    this.stopping.add(settled);
    void settled.then(() => this.stopping.delete(settled));
  }

  private async fillOne(): Promise<void> {
    const uid = this.deps.uidPool?.acquire();
    if (this.deps.uidPool && uid === undefined) return;
    let workspace: string;
    try {
      // Under the pool's own directory until a session adopts it (adoptWorkspace).
      workspace = await createWorkspace(this.deps.paths, uid, this.deps.quota, 'pool');
    } catch (err) {
      if (uid !== undefined) this.deps.uidPool?.release(uid);
      this.fail(err);
      return;
    }
    const shell: Shell = { uid, workspace, spares: { process: null, kernel: null } };
    const runtime = runtimeFor('python');
    if (this.deps.python && runtime && !this.cancelFill) {
      try {
        shell.spares.process = await PrestartedProcess.start(this.deps.context(workspace, uid), runtime);
      } catch (err) {
        this.fail(err);
        await this.destroy(shell);
        return;
      }
    }
    if (this.stopped || this.cancelFill) {
      await this.destroy(shell);
      return;
    }
    this.shells.push(shell);
    // A sandbox that dies while pooled (killed from outside, or never started) is replaced.
    void shell.spares.process?.ended.then(() => {
      const i = this.shells.indexOf(shell);
      if (i < 0) return;
      this.shells.splice(i, 1);
      this.fail(new Error('a pre-started sandbox ended before it was used'));
      void this.destroy(shell).then(() => this.refill(BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length) - 1]));
    });
    this.prestartKernels();
  }

  /**
   * Kernels come after sandboxes: only a pool that has stopped growing (full, or no room under
   * the caps) pre-starts them, each shell's once, and only KERNEL_QUIET_MS after the last take. While sessions take shells as fast as they are made (a
   * burst of process runs), a kernel per shell would be started only to be stopped by the
   * session's first run; its start (a launch chain and Python's imports) is the dearest part
   * of a shell.
   */
  private prestartKernels(): void {
    // Settled: full, or without room for another shell (the caps leave it smaller).
    if (this.stopped || !this.deps.python || this.kernelTimer || (this.shells.length < this.deps.size && this.deps.roomForShell())) return;
    // Nothing to start: no timer either, and a later start waits afresh.
    if (!this.shells.some((s) => !this.kernelTried.has(s)) || this.kernelsStarting >= KERNEL_STARTS || !this.deps.roomForKernel()) {
      this.kernelWaitingSince = 0;
      return;
    }
    const wait = Math.max(this.lastTakeAt + KERNEL_QUIET_MS - Date.now(), this.deferred('kernel') ? DEFER_POLL_MS : 0);
    if (wait > 0) {
      this.kernelTimer = setTimeout(() => {
        this.kernelTimer = null;
        this.prestartKernels();
      }, wait);
      this.kernelTimer.unref();
      return;
    }
    // At most one start per core: a big pool's kernels all starting at once (a launch chain and
    // Python's imports each) would take the CPU from the sessions' runs for seconds. Fewer than
    // that (one at a time) spreads the starts of the default pool of 2 over the time its first
    // sessions run (a bench's warm cells were ~20 % slower).
    while (this.kernelsStarting < KERNEL_STARTS && this.deps.roomForKernel()) {
      const shell = this.shells.find((s) => !this.kernelTried.has(s));
      if (!shell) return;
      this.kernelTried.add(shell);
      const { uid, workspace } = shell;
      const kernel = new Kernel('python', () => this.deps.context(workspace, uid));
      shell.spares.kernel = kernel;
      this.kernelsStarting++;
      // The shell is ready before its kernel: a session that adopts it sooner waits for the
      // rest of the kernel's start in its first cell, still less than a whole start.
      void kernel
        .prestart()
        .then((ready) => {
          // Both its sandboxes started: the next failure starts the backoff from its shortest pause.
          if (ready) this.failures = 0;
          else if (shell.spares.kernel === kernel) {
            shell.spares.kernel = null;
            this.fail(new Error('the pre-started Python kernel did not start'));
          }
        })
        .finally(() => {
          this.kernelsStarting--;
          this.prestartKernels();
        });
    }
  }

  /**
   * True while pre-starting should wait for the executions to pause (DEFER_MAX_MS at most); the
   * first call for a due start marks when its wait began.
   */
  private deferred(what: 'fill' | 'kernel'): boolean {
    const since = what === 'fill' ? this.fillWaitingSince : this.kernelWaitingSince;
    const now = Date.now();
    const wait = this.deps.busy() && (since === 0 || now - since < DEFER_MAX_MS);
    const next = wait ? since || now : 0;
    if (what === 'fill') this.fillWaitingSince = next;
    else this.kernelWaitingSince = next;
    return wait;
  }

  private fail(err: unknown): void {
    this.failures++;
    if (this.failures === 1 || this.failures % 10 === 0) this.deps.log.warn({ err, failures: this.failures }, 'session pool: could not pre-start a shell');
  }

  /** Removes a shell; close() waits for every removal, wherever it began. */
  private destroy(shell: Shell): Promise<void> {
    const removed = this.remove(shell);
    this.track(removed);
    return removed;
  }

  private async remove(shell: Shell): Promise<void> {
    const { process, kernel } = shell.spares;
    shell.spares = { process: null, kernel: null };
    await Promise.all([process?.discard(), kernel?.shutdown()]);
    try {
      await removeWorkspace(shell.workspace);
    } catch (err) {
      this.deps.log.warn({ err }, 'session pool: could not remove a workspace');
    }
    // Only now is nothing left running under the uid.
    if (shell.uid !== undefined) this.deps.uidPool?.release(shell.uid);
  }
}
