/**
 * One execution: a piece of code run in its session's sandbox, with its own event log.
 * State goes queued → running → finished; `done` is appended exactly once, last, after the
 * sandbox (and so every process the code started) is gone.
 */
import { formatDuration, type DoneReason, type Language, type Mode } from '@sluice/protocol';
import {
  CODE_DIR,
  ExecutionCgroup,
  launchSandbox,
  RUNTIME_PATH,
  watchCPUBudget,
  type LaunchSpec,
  type RLimits,
  type Runtime,
  type SandboxProcess,
} from '@sluice/sandbox';
import { ApiError } from '../api-error.js';
import { cgroupHost } from './cgroup-host.js';
import { EventLog } from './event-log.js';
import { EventsChannel } from './events-channel.js';
import { isKernelLanguage, type Kernel, type KernelLanguage } from '../kernel/kernel.js';
import { OutputPipeline } from './output-pipeline.js';

/** The part of a sandboxed process or kernel cell that an execution steers. */
interface Runner {
  stop(graceMs: number): void;
  writeStdin(data: string): void;
  endStdin(): void;
  readonly stdinBacklog: number;
}

/** stdin bytes that may wait for the program to read them. */
const MAX_STDIN_BACKLOG = 1024 * 1024;

export type ExecutionState = 'queued' | 'running' | 'finished';

/** Everything an execution needs from its session and server to run. */
export interface RunContext {
  bwrapPath: string;
  hostUID: number | undefined;
  workspace: string;
  passwdFile: string;
  groupFile: string;
  reporterFile: string;
  runtimeDir: string;
  env: Record<string, string>;
  network: boolean;
  tmpBytes: number;
  limits: RLimits;
  outputLimitBytes: number;
  outputKillBytes: number;
  killGraceMs: number;
  /** Memory of all processes together, bytes (cgroup). */
  memoryBytes: number;
  /** CPUs' worth of time at once (cgroup CPU quota). */
  cpu: number;
  /** CPU seconds across all processes; 0 = no budget. */
  cpuTimeSec: number;
  /** Name of the server's parent cgroup (unique per data directory). */
  cgroupParent: string;
}

export interface ExecutionInit {
  /** Its id: unguessable, made by the caller (128 random bits). */
  id: string;
  sessionID: string;
  /** Tenant that owns it (null without auth). */
  owner: string | null;
  language: Language;
  mode: Mode;
  runtime: Runtime;
  code: string;
  stdin: string | undefined;
  /** Variables for this run only, over the session's. */
  env: Record<string, string>;
  timeoutSec: number;
  maxLogBytes: number;
}

export class Execution {
  readonly id: string;
  readonly sessionID: string;
  readonly owner: string | null;
  readonly language: Language;
  readonly mode: Mode;
  readonly timeoutSec: number;
  readonly log: EventLog;
  readonly createdAt = Date.now();
  startedAt: number | null = null;
  finishedAt: number | null = null;
  /** Resolves when `done` has been appended. */
  readonly finished: Promise<void>;

  private stateValue: ExecutionState = 'queued';
  private stopReason: DoneReason | null = null;
  /** What runs the code now: a sandboxed process, or a cell in the session's kernel. */
  private proc: Runner | null = null;
  private readonly runtime: Runtime;
  private code: string;
  private stdin: string | undefined;
  /** stdin sent before the program started (bounded by MAX_STDIN_BACKLOG). */
  private pendingStdin: string[] = [];
  private pendingStdinBytes = 0;
  private stdinEOF = false;
  private readonly runEnv: Record<string, string>;
  private resolveFinished!: () => void;

  constructor(init: ExecutionInit) {
    this.id = init.id;
    this.sessionID = init.sessionID;
    this.owner = init.owner;
    this.language = init.language;
    this.mode = init.mode;
    this.runtime = init.runtime;
    this.code = init.code;
    this.stdin = init.stdin;
    // A body `stdin` is the whole input; without one, stdin stays open for POST …/stdin.
    this.stdinEOF = init.stdin !== undefined;
    this.runEnv = init.env;
    this.timeoutSec = init.timeoutSec;
    this.log = new EventLog(init.maxLogBytes);
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  get state(): ExecutionState {
    return this.stateValue;
  }

  /**
   * Stops the execution, keeping all output so far. A queued one never starts; a running one
   * gets SIGTERM on every process, then SIGKILL after the grace period. Idempotent.
   */
  cancel(graceMs: number): void {
    this.stop('cancelled', graceMs);
  }

  /**
   * Writes to the program's stdin (`eof` closes it after `data`). Before the program starts,
   * the data waits (bounded); INVALID_REQUEST once stdin is closed or the execution finished,
   * RATE_LIMITED while the program has not read what it was sent.
   */
  writeStdin(data: string, eof: boolean): void {
    if (this.stateValue === 'finished') throw new ApiError('INVALID_REQUEST', `execution ${this.id} has finished; nothing reads its stdin`);
    if (this.stdinEOF) throw new ApiError('INVALID_REQUEST', `the stdin of execution ${this.id} is closed (the run gave \`stdin\`, or eof was sent)`);
    const bytes = Buffer.byteLength(data);
    const backlog = this.proc ? this.proc.stdinBacklog : this.pendingStdinBytes;
    if (bytes > 0 && backlog + bytes > MAX_STDIN_BACKLOG) {
      throw new ApiError('RATE_LIMITED', `the program has not read the ${backlog} bytes of stdin sent before; at most ${MAX_STDIN_BACKLOG} may wait`, { retryAfter: 1 });
    }
    if (eof) this.stdinEOF = true;
    if (!this.proc) {
      if (bytes > 0) this.pendingStdin.push(data);
      this.pendingStdinBytes += bytes;
      return;
    }
    if (bytes > 0) this.proc.writeStdin(data);
    if (eof) this.proc.endStdin();
  }

  /** Stops with the given reason (the first reason wins). */
  stop(reason: DoneReason, graceMs: number): void {
    if (this.stateValue === 'finished') return;
    this.stopReason ??= reason;
    if (this.stateValue === 'queued') {
      this.finish({ exitCode: null, signal: null, startedAt: Date.now() });
      return;
    }
    this.proc?.stop(graceMs);
  }

  /**
   * Runs the code; resolves when `done` is in the log. Called once by the session's queue,
   * which hands over its kernels for kernel mode.
   */
  async run(ctx: RunContext, kernelFor?: (language: KernelLanguage) => Kernel): Promise<void> {
    if (this.stateValue !== 'queued') return this.finished;
    this.stateValue = 'running';
    const startedAt = Date.now();
    this.startedAt = startedAt;
    this.log.append({
      type: 'start',
      execution_id: this.id,
      session_id: this.sessionID,
      language: this.language,
      mode: this.mode,
    });

    const pipeline = new OutputPipeline(
      {
        chunk: (stream, content) => this.log.append({ type: stream, content }),
        truncated: (stream, dropped) => this.log.append({ type: 'truncated', stream, dropped_bytes: dropped }),
      },
      { limitBytes: ctx.outputLimitBytes },
    );
    if (this.mode === 'kernel' && kernelFor && isKernelLanguage(this.language)) {
      return this.runCell(ctx, kernelFor(this.language), pipeline, startedAt);
    }
    let proc: SandboxProcess | null = null;
    const channel = new EventsChannel({
      event: (e) => {
        // Output read before the event was written must come first in the log.
        pipeline.flush();
        this.log.append(e);
      },
      malformed: (note) => pipeline.write('stderr', Buffer.from(`sluice: ${note}\n`)),
      ack: (count) => proc?.ackEvents(count),
    });
    const codePath = `${CODE_DIR}/${this.runtime.fileName}`;
    const cgroup = await this.createCgroup(ctx);
    try {
      proc = launchSandbox({
        ...sandboxBase(ctx, this.runtime, cgroup),
        ...(this.runtime.binds ? { extraBinds: this.runtime.binds } : {}),
        env: { ...baseEnv(), ...this.runtime.env, ...ctx.env, ...this.runEnv },
        codePath,
        command: [this.runtime.executable, ...this.runtime.args(codePath, cgroup ? ctx.memoryBytes : undefined)],
        code: this.runtime.prepareCode ? this.runtime.prepareCode(this.code) : this.code,
        ...(this.stdin !== undefined ? { stdin: this.stdin } : {}),
        onOutput: (stream, chunk) => {
          pipeline.write(stream, chunk);
          if (pipeline.totalBytes > ctx.outputKillBytes) this.stop('output_limit', 0);
        },
        onEvents: (chunk) => channel.write(chunk),
      });
      channel.attach(proc.events);
    } catch (err) {
      // spawn() can throw synchronously (e.g. fd exhaustion); the log must still end with done.
      this.log.append({ type: 'error', code: 'SANDBOX_UNAVAILABLE', error: `the sandbox failed to start: ${(err as Error).message}` });
      this.stopReason = 'error';
      await cgroup?.destroy().catch(() => undefined);
      this.finish({ exitCode: null, signal: null, startedAt });
      return;
    }
    // RLIMIT_CPU counts per process; the cgroup's usage counts every process of the execution.
    const budget =
      cgroup && ctx.cpuTimeSec > 0
        ? watchCPUBudget(cgroup, { budgetNs: ctx.cpuTimeSec * 1e9, onExceeded: () => this.stop('timeout', 0) })
        : null;
    const started: SandboxProcess = proc;
    this.proc = started;
    for (const data of this.pendingStdin) started.writeStdin(data);
    if (this.stdinEOF && this.stdin === undefined) started.endStdin();
    this.pendingStdin = [];
    this.pendingStdinBytes = 0;
    // The code lives on in the sandbox's file now; don't hold it for the log's lifetime.
    this.code = '';
    this.stdin = undefined;
    const timer = setTimeout(() => this.stop('timeout', ctx.killGraceMs), this.timeoutSec * 1000);
    // A stop requested while we were starting (cancel right after enqueue) applies now.
    if (this.stopReason) started.stop(ctx.killGraceMs);

    const exit = await started.exited;
    proc = null;
    clearTimeout(timer);
    budget?.stop();
    if (cgroup) {
      const stats = await cgroup.stats().catch(() => null);
      // The kernel's OOM killer, not us, ended it: report the limit, not a bare SIGKILL.
      if (stats?.oomKills && exit.signal === 'SIGKILL') this.stopReason ??= 'memory_limit';
      else if (stats?.oomKills) {
        // A child, not the program itself, was OOM-killed: the program's status is its own, but say so.
        pipeline.write('stderr', Buffer.from(`\nsluice: the memory limit (${ctx.memoryBytes} bytes) was reached; the kernel killed ${stats.oomKills} process(es)\n`));
      }
      if (stats?.pidsMaxHits) {
        pipeline.write('stderr', Buffer.from(`\nsluice: the process limit (${ctx.limits.processes ?? 'pids'}) was reached; ${stats.pidsMaxHits} fork(s) refused\n`));
      }
      await cgroup.destroy().catch(() => undefined);
    }
    await new Promise<void>((r) => setImmediate(r));
    channel.end();
    pipeline.finish();
    if (exit.setupError !== null) {
      this.log.append({ type: 'error', code: 'SANDBOX_UNAVAILABLE', error: `the sandbox failed to start: ${exit.setupError}` });
      this.stopReason = 'error';
    }
    this.finish({ exitCode: exit.exitCode, signal: exit.signal, startedAt });
  }

  /** Kernel mode: the code is one cell of the session's long-lived interpreter. */
  private async runCell(ctx: RunContext, kernel: Kernel, pipeline: OutputPipeline, startedAt: number): Promise<void> {
    const stdin = this.pendingStdin.join('');
    const cell = kernel.execute(
      { code: this.code, stdin: { data: this.stdin ?? (stdin === '' ? undefined : stdin), eof: this.stdinEOF }, env: this.runEnv },
      {
        output: (stream, chunk) => {
          pipeline.write(stream, chunk);
          if (pipeline.totalBytes > ctx.outputKillBytes) this.stop('output_limit', 0);
        },
        event: (e) => {
          pipeline.flush();
          this.log.append(e);
        },
        note: (text) => pipeline.write('stderr', Buffer.from(`sluice: ${text}\n`)),
      },
    );
    this.code = '';
    this.stdin = undefined;
    this.pendingStdin = [];
    this.pendingStdinBytes = 0;
    this.proc = {
      // SIGINT first; a kernel that ignores it for the grace period is restarted. An immediate
      // stop (output flood) still gets a short chance to keep the kernel's state.
      stop: (graceMs) => kernel.interrupt(Math.max(graceMs, 500)),
      writeStdin: (data) => cell.writeStdin(data),
      endStdin: () => cell.endStdin(),
      get stdinBacklog() {
        return cell.stdinBacklog;
      },
    };
    const timer = setTimeout(() => this.stop('timeout', ctx.killGraceMs), this.timeoutSec * 1000);
    const budget = ctx.cpuTimeSec > 0 ? kernel.watchCellCPU(ctx.cpuTimeSec * 1e9, () => this.stop('timeout', ctx.killGraceMs)) : null;
    if (this.stopReason) this.proc.stop(ctx.killGraceMs);
    const outcome = await cell.done;
    clearTimeout(timer);
    budget?.stop();
    const name = this.language === 'python' ? 'Python' : 'JavaScript';
    if (outcome.status === 'died' && outcome.oomKills > 0) this.stopReason ??= 'memory_limit';
    else if (outcome.oomKills > 0) {
      pipeline.write('stderr', Buffer.from(`\nsluice: the memory limit (${ctx.memoryBytes} bytes) was reached; the kernel killed ${outcome.oomKills} process(es)\n`));
    }
    if (outcome.setupError !== null) {
      pipeline.finish();
      this.log.append({ type: 'error', code: 'SANDBOX_UNAVAILABLE', error: `the ${name} kernel failed to start: ${outcome.setupError}` });
      this.stopReason = 'error';
      this.finish({ exitCode: null, signal: null, startedAt });
      return;
    }
    if (outcome.kernelRestarted) {
      const why = outcome.broken
        ? `the cell closed or redirected the kernel's ${outcome.broken} (fd ${outcome.broken === 'stdout' ? 1 : 2}), so later cells could not print; the ${name} kernel was restarted`
        : outcome.status === 'died' && !this.stopReason
          ? `the ${name} kernel exited (${outcome.signal ?? `status ${outcome.exitCode ?? 'unknown'}`})`
          : outcome.status === 'died' && this.stopReason === 'memory_limit'
            ? `the ${name} kernel was killed at the memory limit (${ctx.memoryBytes} bytes)`
            : !this.stopReason
              ? `the cell ended the ${name} kernel (process.exit())`
              : `the ${name} kernel did not stop on SIGINT and was restarted`;
      pipeline.write('stderr', Buffer.from(`\nsluice: ${why}; its variables and imports are gone, and the next execution starts a fresh kernel\n`));
    }
    pipeline.finish();
    // An interrupted cell says 130 (the kernel's verdict); a dead kernel's own status is the truth.
    this.finish({ exitCode: outcome.exitCode, signal: outcome.status === 'died' ? outcome.signal : null, startedAt, kernelRestarted: outcome.kernelRestarted });
  }

  /** A cgroup for this execution, or null where the host has none (rlimits still apply). */
  private async createCgroup(ctx: RunContext): Promise<ExecutionCgroup | null> {
    const host = await cgroupHost(ctx.cgroupParent);
    if (host.version === 'none') return null;
    const limits = {
      memoryBytes: ctx.memoryBytes,
      cpuQuota: ctx.cpu,
      ...(ctx.limits.processes !== undefined ? { pids: ctx.limits.processes } : {}),
    };
    return ExecutionCgroup.create(host, this.id, limits).catch(() => null);
  }

  private finish(r: { exitCode: number | null; signal: string | null; startedAt: number; kernelRestarted?: boolean }): void {
    if (this.stateValue === 'finished') return;
    const durationMs = Date.now() - r.startedAt;
    const reason: DoneReason = this.stopReason ?? (r.signal !== null ? 'signaled' : 'exited');
    this.log.append({
      type: 'done',
      exit_code: r.exitCode,
      duration: formatDuration(durationMs),
      duration_ms: durationMs,
      reason,
      ...(r.signal !== null ? { signal: r.signal } : {}),
      ...(r.kernelRestarted ? { kernel_restarted: true } : {}),
    });
    this.log.close();
    this.stateValue = 'finished';
    this.finishedAt = Date.now();
    this.proc = null;
    this.resolveFinished();
  }
}

/**
 * What every sandbox of a session shares, a process run's or a kernel's: the session's files,
 * uid, network, limits and the execution's cgroup; the environment starts from baseEnv() and
 * the runtime's variables, then the session's.
 */
export function sandboxBase(ctx: RunContext, runtime: Runtime, cgroup: ExecutionCgroup | null) {
  return {
    bwrapPath: ctx.bwrapPath,
    hostUID: ctx.hostUID,
    workspace: ctx.workspace,
    passwdFile: ctx.passwdFile,
    groupFile: ctx.groupFile,
    reporterFile: ctx.reporterFile,
    runtimeDir: ctx.runtimeDir,
    env: { ...baseEnv(), ...runtime.env, ...ctx.env },
    network: ctx.network,
    tmpBytes: ctx.tmpBytes,
    cgroupProcsFiles: cgroup?.procsFiles() ?? [],
    // With a pids cgroup, RLIMIT_NPROC (per uid, counting bwrap's own processes too) is only
    // a backstop above it, so the cgroup is what stops a fork bomb and can report it.
    limits: cgroup && ctx.limits.processes !== undefined ? { ...ctx.limits, processes: ctx.limits.processes + 32 } : ctx.limits,
  } satisfies Partial<LaunchSpec>;
}

/** The environment every sandboxed program starts from; nothing of the server's own. */
export function baseEnv(): Record<string, string> {
  return {
    // The helpers (sluice-progress, sluice-result) live in RUNTIME_PATH/bin.
    PATH: `/usr/local/bin:/usr/bin:/bin:${RUNTIME_PATH}/bin`,
    HOME: '/workspace',
    TMPDIR: '/tmp',
    // Caches (fontconfig, pip…) in the private /tmp, not in the user's workspace.
    XDG_CACHE_HOME: '/tmp/.cache',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    USER: 'sandbox',
    TERM: 'dumb',
  };
}
