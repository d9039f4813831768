/**
 * A session: a workspace and a host uid that live across executions, the settings every
 * execution inherits, and a bounded queue that runs its executions one at a time in order.
 */
import type { Language, SessionLimits } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import { isKernelLanguage, Kernel, startProcess, type KernelLanguage, type RunContext } from '@sluice/sandbox';
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

export class Session {
  readonly createdAt = Date.now();
  lastActiveAt = Date.now();
  /** Readers currently attached to this session's executions (streams keep a session alive). */
  attached = 0;
  private running: Execution | null = null;
  private readonly queue: Execution[] = [];
  private destroyed = false;
  private executionCount = 0;
  private readonly kernels = new Map<KernelLanguage, Kernel>();

  constructor(
    readonly id: string,
    readonly owner: string | null,
    readonly settings: SessionSettings,
    readonly workspace: string,
    readonly hostUID: number | undefined,
    private readonly context: () => Omit<
      RunContext,
      'workspace' | 'hostUID' | 'env' | 'network' | 'limits' | 'outputLimitBytes' | 'memoryBytes' | 'cpu' | 'cpuTimeSec'
    >,
    private readonly maxQueue: number,
    private readonly onKernelStart: (k: Kernel) => void = () => {},
  ) {}

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
    await this.stopKernels();
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
    return {
      ...this.context(),
      workspace: this.workspace,
      hostUID: this.hostUID,
      env: this.settings.env,
      network: this.settings.network,
      limits: {
        fileSize: this.settings.limits.file_size,
        openFiles: this.settings.limits.open_files,
        processes: this.settings.limits.processes,
      },
      outputLimitBytes: this.settings.limits.output_bytes,
      memoryBytes: this.settings.limits.memory_bytes,
      cpu: this.settings.limits.cpu,
      cpuTimeSec: this.settings.limits.cpu_time,
    };
  }

  /** Kernel mode runs a cell of the session's kernel for the language; process mode a fresh sandbox. */
  private readonly startRunner: StartRunner = async (request, ctx, sink) => {
    if (request.mode === 'kernel' && isKernelLanguage(request.language)) return this.kernel(request.language).execute(request, sink);
    return startProcess(ctx, request.runtime, request, sink);
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
