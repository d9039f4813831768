/**
 * A session: a workspace and a host uid that live across executions, the settings every
 * execution inherits, and a bounded queue that runs its executions one at a time in order.
 */
import type { Language, SessionLimits } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import { isKernelLanguage, Kernel, startProcess, type KernelLanguage, type PrestartedProcess, type RunContext } from '@sluice/sandbox';
import type { Execution, StartRunner } from '../execution/execution.js';

export interface SessionSettings {
  language: Language;
  env: Record<string, string>;
  timeoutSec: number | undefined;
  idleTTLSec: number;
  network: boolean;
  /** Effective limits (defaults filled in). */
  limits: Required<SessionLimits>;
}

/** What every session's RunContext takes from the server (the rest is the session's own). */
export type ServerRunContext = Omit<
  RunContext,
  'workspace' | 'hostUID' | 'env' | 'network' | 'limits' | 'outputLimitBytes' | 'memoryBytes' | 'cpu' | 'cpuTimeSec'
>;

/** The RunContext of a session with these settings, workspace and uid (also a pooled shell's). */
export function sessionRunContext(server: ServerRunContext, settings: SessionSettings, workspace: string, hostUID: number | undefined): RunContext {
  return {
    ...server,
    workspace,
    hostUID,
    env: settings.env,
    network: settings.network,
    limits: {
      fileSize: settings.limits.file_size,
      openFiles: settings.limits.open_files,
      processes: settings.limits.processes,
    },
    outputLimitBytes: settings.limits.output_bytes,
    memoryBytes: settings.limits.memory_bytes,
    cpu: settings.limits.cpu,
    cpuTimeSec: settings.limits.cpu_time,
  };
}

/**
 * What a session adopted from the pool (session-pool.ts) waits with: a process sandbox and a
 * kernel, pre-started in its workspace under its uid. Its first execution takes the one that
 * fits; the other is stopped before that execution's `done`, so afterwards, as for any
 * session, nothing of its uid runs between executions but its kernels.
 */
export interface Spares {
  process: PrestartedProcess | null;
  kernel: Kernel | null;
}

export class Session {
  readonly createdAt = Date.now();
  lastActiveAt = Date.now();
  /** Readers currently attached to this session's executions (streams keep a session alive). */
  attached = 0;
  private running: Execution | null = null;
  private readonly queue: Execution[] = [];
  private destroyed = false;
  /** runContext(), once built. */
  private ctx: RunContext | null = null;
  private executionCount = 0;
  private readonly kernels = new Map<KernelLanguage, Kernel>();
  /** Dropped spare kernels still stopping: destroy() waits for them before the uid goes back. */
  private readonly stopping = new Set<Promise<unknown>>();

  constructor(
    readonly id: string,
    readonly owner: string | null,
    readonly settings: SessionSettings,
    readonly workspace: string,
    readonly hostUID: number | undefined,
    private readonly context: () => ServerRunContext,
    private readonly maxQueue: number,
    private readonly onKernelStart: (k: Kernel) => void = () => {},
    private spares: Spares | null = null,
  ) {
    spares?.kernel?.adopt(() => this.runContext(), onKernelStart);
  }

  /** The pre-started kernel this session waits with (not started by a cell yet), if any. */
  get spareKernel(): Kernel | null {
    return this.spares?.kernel ?? null;
  }

  /** Stops the spare kernel (SLUICE_MAX_KERNELS needs room); false when there is none. */
  dropSpareKernel(): boolean {
    const k = this.spares?.kernel;
    if (!this.spares || !k) return false;
    this.spares.kernel = null;
    const stopped = k.shutdown().catch(() => undefined);
    this.stopping.add(stopped);
    void stopped.then(() => this.stopping.delete(stopped));
    return true;
  }

  /** Queues an execution; runs it now if nothing else is running. */
  enqueue(exec: Execution): void {
    if (this.destroyed) throw new ApiError('NOT_FOUND', `session ${JSON.stringify(this.id)} was deleted`);
    if (this.running && this.queue.length >= this.maxQueue) {
      throw new ApiError(
        'SESSION_BUSY',
        `session ${JSON.stringify(this.id)} is running an execution and ${this.queue.length} more are queued (the limit); ` +
          'wait for one to finish or cancel one',
        { retryAfter: 1 },
      );
    }
    this.executionCount++;
    this.touch();
    this.queue.push(exec);
    this.pump();
  }

  /** The execution running now, if any. */
  get current(): Execution | null {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  get executions(): number {
    return this.executionCount;
  }

  /** True when nothing runs, waits or reads: the idle TTL may run. */
  get idle(): boolean {
    return this.running === null && this.queue.length === 0 && this.attached === 0;
  }

  /** When this session expires if nothing happens. */
  get expiresAt(): number {
    return this.lastActiveAt + this.settings.idleTTLSec * 1000;
  }

  touch(): void {
    this.lastActiveAt = Date.now();
  }

  /** Cancels everything queued and running; resolves once all of it has finished and the kernels are gone. */
  async destroy(graceMs: number): Promise<void> {
    this.destroyed = true;
    const all = [...this.queue, ...(this.running ? [this.running] : [])];
    this.queue.length = 0;
    for (const e of all) e.cancel(graceMs);
    await Promise.all(all.map((e) => e.finished));
    await Promise.all([this.stopKernels(), this.dropSpares(), ...this.stopping]);
  }

  /** Stops whatever pre-started spare is left; resolves once it is gone. */
  private async dropSpares(): Promise<void> {
    const spares = this.spares;
    this.spares = null;
    await Promise.all([spares?.process?.discard(), spares?.kernel?.shutdown()]);
  }

  /** The session's kernel for a language (started by its first cell). */
  kernel(language: KernelLanguage): Kernel {
    let k = this.kernels.get(language);
    if (!k) {
      k = new Kernel(language, () => this.runContext(), this.onKernelStart);
      this.kernels.set(language, k);
    }
    return k;
  }

  /** Kernels that are up, for views and for freeing resources. */
  get liveKernels(): Kernel[] {
    return [...this.kernels.values()].filter((k) => k.running);
  }

  /**
   * Stops every kernel: variables and imports are gone, the next cell starts a fresh kernel.
   * A cell running now ends with `kernel_restarted`.
   */
  async stopKernels(): Promise<void> {
    await Promise.all([...this.kernels.values()].map((k) => k.shutdown()));
  }

  /** What a sandbox of this session needs to start: its workspace, uid, env and limits. */
  runContext(): RunContext {
    // Built once: its parts are fixed for the session's life, and every run asks for it.
    this.ctx ??= sessionRunContext(this.context(), this.settings, this.workspace, this.hostUID);
    return this.ctx;
  }

  /**
   * Kernel mode runs a cell of the session's kernel for the language; process mode a fresh
   * sandbox. The first execution of a session adopted from the pool uses the spare that fits
   * and stops the other; its `done` waits until that one is gone.
   */
  private readonly startRunner: StartRunner = async (request, ctx, sink) => {
    const spares = this.spares;
    this.spares = null;
    const kernelMode = request.mode === 'kernel' && isKernelLanguage(request.language);
    if (spares?.kernel && kernelMode && !this.kernels.has(spares.kernel.language) && spares.kernel.language === request.language) {
      this.kernels.set(spares.kernel.language, spares.kernel);
      spares.kernel = null;
    }
    const runner = kernelMode && isKernelLanguage(request.language) ? this.kernel(request.language).execute(request, sink) : await startProcess(ctx, request.runtime, request, sink, spares?.process ?? undefined);
    if (!spares) return runner;
    // Not taken (it did not fit, or the run was a cell): stopped now, gone before `done`.
    const rest = Promise.all([spares.process?.discard(), spares.kernel?.shutdown()]);
    return { ...runner, done: Promise.all([runner.done, rest]).then(([outcome]) => outcome), get stdinBacklog() { return runner.stdinBacklog; } };
  };

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    if (!next) return;
    if (next.state !== 'queued') return this.pump();
    this.running = next;
    void next
      .run(this.runContext(), this.startRunner)
      .finally(() => {
        this.running = null;
        this.touch();
        if (!this.destroyed) this.pump();
      });
  }
}
