/**
 * A pre-started process sandbox: the ordinary launch chain (launch.ts) with its cgroup, started
 * before the code is known. Everything up to the code is done ahead (keeper, rlimits, the
 * privilege drop, namespaces, mounts); bwrap then waits reading the code file from its pipe.
 * The run that takes it over gives the code, its own variables (the reporter reads them before
 * it forks the program) and its stdin; what remains is `--remount-ro /`, seccomp and two execs.
 *
 * It is fixed to one RunContext and runtime (uid, workspace, env, network, limits, command):
 * `fits` says whether a run's context is that one. Used once, by one run; never shared.
 */
import type { OutputStream } from '@sluice/protocol';
import { cgroupHost } from './cgroups/cgroup-host.js';
import { ExecutionCgroup } from './cgroups/execution-cgroup.js';
import { launchSandbox, type SandboxProcess } from './launch.js';
import { sandboxBase, type RunContext } from './run-context.js';
import { CODE_DIR, type Runtime } from './runtimes.js';
import { randomHex } from './random-token.js';

/** Where a taken sandbox's output and events go. */
export interface PrestartTarget {
  output(stream: OutputStream, chunk: Buffer): void;
  events(chunk: Buffer): void;
}

/** What a run gets when it takes a pre-started sandbox over. */
export interface TakenSandbox {
  proc: SandboxProcess;
  cgroup: ExecutionCgroup | null;
}

/** Names the cgroups of pre-started sandboxes and kernels: a pool's groups are told apart by it. */
export const POOL_CGROUP_PREFIX = 'pool-';

/** Output before the take-over (bwrap's own complaints) kept for the run, at most this much. */
const EARLY_OUTPUT_LIMIT = 16 * 1024;

export class PrestartedProcess {
  private target: PrestartTarget | null = null;
  private early: { stream: OutputStream; chunk: Buffer }[] = [];
  private earlyBytes = 0;
  private taken = false;
  /** Resolves once the sandbox is gone and its cgroup removed (unless a run took it: then the run's). */
  readonly ended: Promise<void>;

  private constructor(
    private key: string,
    readonly runtime: Runtime,
    private readonly proc: SandboxProcess,
    private readonly cgroup: ExecutionCgroup | null,
  ) {
    this.ended = proc.exited.then(async () => {
      if (!this.taken) await cgroup?.destroy().catch(() => undefined);
    });
  }

  /** Starts a sandbox for `runtime` in `ctx`, up to the point where it waits for its code. */
  static async start(ctx: RunContext, runtime: Runtime): Promise<PrestartedProcess> {
    const host = await cgroupHost(ctx.cgroupParent);
    const cgroup =
      host.version === 'none'
        ? null
        : await ExecutionCgroup.create(host, `${POOL_CGROUP_PREFIX}p${randomHex(12)}`, {
            memoryBytes: ctx.memoryBytes,
            cpuQuota: ctx.cpu,
            ...(ctx.limits.processes !== undefined ? { pids: ctx.limits.processes } : {}),
          }).catch(() => null);
    const codePath = `${CODE_DIR}/${runtime.fileName}`;
    let self: PrestartedProcess | null = null;
    const deliver = (stream: OutputStream, chunk: Buffer): void => self?.onOutput(stream, chunk);
    let proc: SandboxProcess;
    try {
      proc = launchSandbox({
        ...sandboxBase(ctx, runtime, cgroup),
        codePath,
        command: [runtime.executable, ...runtime.args(codePath, cgroup ? ctx.memoryBytes : undefined)],
        code: '',
        deferred: true,
        onOutput: deliver,
        onEvents: (chunk) => self?.target?.events(chunk),
      });
    } catch (err) {
      await cgroup?.destroy().catch(() => undefined);
      throw err;
    }
    self = new PrestartedProcess(fitKey(ctx, runtime), runtime, proc, cgroup);
    return self;
  }

  /** True when a run of `runtime` in `ctx` would have started exactly this sandbox. */
  fits(ctx: RunContext, runtime: Runtime): boolean {
    return !this.taken && this.key === fitKey(ctx, runtime);
  }

  /**
   * Its workspace got a new path (adoptWorkspace links it): a run's context now names that path.
   * Both lead to the same directory, so it is the same workspace.
   */
  moved(ctx: RunContext): void {
    this.key = fitKey(ctx, this.runtime);
  }

  /** True while nobody took it and it is still up. */
  get usable(): boolean {
    return !this.taken && !this.proc.gone;
  }

  /** Host pid of the sandbox's PID 1, once bwrap reported it. */
  get pid(): number | null {
    return this.proc.pid;
  }

  /**
   * Hands the sandbox to a run (once): from now on its output and events go to `target`, and
   * the run calls `proc.begin()` and owns the cgroup. Null when it is gone or taken already.
   */
  take(target: PrestartTarget): TakenSandbox | null {
    if (!this.usable) return null;
    this.taken = true;
    this.target = target;
    for (const { stream, chunk } of this.early) target.output(stream, chunk);
    this.early = [];
    return { proc: this.proc, cgroup: this.cgroup };
  }

  /** Kills it (unless taken) and resolves once it and its cgroup are gone. */
  async discard(): Promise<void> {
    if (!this.taken) this.proc.kill();
    await this.ended;
  }

  private onOutput(stream: OutputStream, chunk: Buffer): void {
    if (this.target) return this.target.output(stream, chunk);
    if (this.earlyBytes >= EARLY_OUTPUT_LIMIT) return;
    this.early.push({ stream, chunk });
    this.earlyBytes += chunk.length;
  }
}

/** What fixes a sandbox before its code: a run's context and runtime, minus what varies per run. */
function fitKey(ctx: RunContext, runtime: Runtime): string {
  return JSON.stringify([
    runtime.language,
    runtime.executable,
    ctx.bwrapPath,
    ctx.hostUID ?? null,
    ctx.workspace,
    ctx.passwdFile,
    ctx.groupFile,
    ctx.reporterFile,
    ctx.runtimeDir,
    Object.entries(ctx.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ctx.network,
    ctx.tmpBytes,
    ctx.limits.fileSize,
    ctx.limits.openFiles,
    ctx.limits.processes ?? null,
    ctx.memoryBytes,
    ctx.cpu,
    ctx.cgroupParent,
  ]);
}
