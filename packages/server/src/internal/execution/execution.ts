/**
 * One execution: a piece of code run in its session's sandbox, with its own event log.
 * State goes queued → running → finished; `done` is appended exactly once, last, after the
 * sandbox (and so every process the code started) is gone.
 */
import { formatDuration, type DoneReason, type ExecutionState, type Language, type Mode } from '@sluice/protocol';
import type { RunContext, Runner, RunnerOutcome, RunnerRequest, RunSink, Runtime } from '@sluice/sandbox';
import { ApiError } from '../api-error.js';
import { EventLog } from './event-log.js';
import { OutputPipeline } from './output-pipeline.js';

/** stdin bytes that may wait for the program to read them. */
const MAX_STDIN_BACKLOG = 1024 * 1024;

/**
 * Starts what runs an execution's code: a sandboxed process, or a cell of the session's kernel
 * (the session decides by mode). The seam where a test puts a runner of its own.
 */
export type StartRunner = (request: RunnerRequest & { language: Language; mode: Mode; runtime: Runtime }, ctx: RunContext, sink: RunSink) => Promise<Runner>;

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
  private runner: Runner | null = null;
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
    const backlog = this.runner ? this.runner.stdinBacklog : this.pendingStdinBytes;
    if (bytes > 0 && backlog + bytes > MAX_STDIN_BACKLOG) {
      throw new ApiError('RATE_LIMITED', `the program has not read the ${backlog} bytes of stdin sent before; at most ${MAX_STDIN_BACKLOG} may wait`, { retryAfter: 1 });
    }
    if (eof) this.stdinEOF = true;
    if (!this.runner) {
      if (bytes > 0) this.pendingStdin.push(data);
      this.pendingStdinBytes += bytes;
      return;
    }
    if (bytes > 0) this.runner.writeStdin(data);
    if (eof) this.runner.endStdin();
  }

  /** Stops with the given reason (the first reason wins). */
  stop(reason: DoneReason, graceMs: number): void {
    if (this.stateValue === 'finished') return;
    this.stopReason ??= reason;
    if (this.stateValue === 'queued') {
      this.finish({ exitCode: null, signal: null, startedAt: Date.now() });
      return;
    }
    this.runner?.stop(graceMs);
  }

  /**
   * Runs the code; resolves when `done` is in the log. Called once by the session's queue,
   * which says what runs it (`start`: a process, or its kernel for kernel mode).
   */
  async run(ctx: RunContext, start: StartRunner): Promise<void> {
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
    const sink: RunSink = {
      output: (stream, chunk) => {
        pipeline.write(stream, chunk);
        if (pipeline.totalBytes > ctx.outputKillBytes) this.stop('output_limit', 0);
      },
      event: (e) => {
        // Output read before the event was written must come first in the log.
        pipeline.flush();
        this.log.append(e);
      },
      note: (text) => pipeline.write('stderr', Buffer.from(`sluice: ${text}\n`)),
    };
    const request = { id: this.id, language: this.language, mode: this.mode, runtime: this.runtime, code: this.code, stdin: this.stdin, env: this.runEnv };
    // The code lives on in the sandbox (or the kernel) now; don't hold it for the log's lifetime.
    this.code = '';
    this.stdin = undefined;
    let runner: Runner;
    try {
      runner = await start(request, ctx, sink);
    } catch (err) {
      pipeline.finish();
      return this.fail(`the sandbox failed to start: ${(err as Error).message}`, startedAt);
    }
    this.runner = runner;
    for (const data of this.pendingStdin) runner.writeStdin(data);
    if (this.stdinEOF && request.stdin === undefined) runner.endStdin();
    this.pendingStdin = [];
    this.pendingStdinBytes = 0;
    const timer = setTimeout(() => this.stop('timeout', ctx.killGraceMs), this.timeoutSec * 1000);
    const budget = ctx.cpuTimeSec > 0 ? runner.watchCPU(ctx.cpuTimeSec * 1e9, () => this.stop('timeout', ctx.killGraceMs)) : null;
    // A stop requested while we were starting (cancel right after enqueue) applies now.
    if (this.stopReason) runner.stop(ctx.killGraceMs);

    const outcome = await runner.done;
    clearTimeout(timer);
    budget?.stop();
    if (outcome.setupError !== null) {
      pipeline.finish();
      return this.fail(outcome.setupError, startedAt);
    }
    this.notes(outcome, ctx, sink);
    pipeline.finish();
    this.finish({ exitCode: outcome.exitCode, signal: outcome.signal, startedAt, kernelRestarted: outcome.kernelRestart !== null });
  }

  /** What the outcome says that the program's own output does not: limits hit, a lost kernel. */
  private notes(outcome: RunnerOutcome, ctx: RunContext, sink: RunSink): void {
    // On a line of its own, after whatever the program printed last.
    const note = (text: string): void => sink.output('stderr', Buffer.from(`\nsluice: ${text}\n`));
    if (outcome.oomKilled) this.stopReason ??= 'memory_limit';
    else if (outcome.oomKills > 0) {
      // A child, not the program itself, was OOM-killed: the program's status is its own, but say so.
      note(`the memory limit (${ctx.memoryBytes} bytes) was reached; the kernel killed ${outcome.oomKills} process(es)`);
    }
    if (outcome.pidsMaxHits > 0) {
      note(`the process limit (${ctx.limits.processes ?? 'pids'}) was reached; ${outcome.pidsMaxHits} fork(s) refused`);
    }
    const restart = outcome.kernelRestart;
    if (!restart) return;
    const name = this.language === 'python' ? 'Python' : 'JavaScript';
    const why = restart.broken
      ? `the cell closed or redirected the kernel's ${restart.broken} (fd ${restart.broken === 'stdout' ? 1 : 2}), so later cells could not print; the ${name} kernel was restarted`
      : restart.died && !this.stopReason
        ? `the ${name} kernel exited (${outcome.signal ?? `status ${outcome.exitCode ?? 'unknown'}`})`
        : restart.died && this.stopReason === 'memory_limit'
          ? `the ${name} kernel was killed at the memory limit (${ctx.memoryBytes} bytes)`
          : !this.stopReason
            ? `the cell ended the ${name} kernel (process.exit())`
            : `the ${name} kernel did not stop on SIGINT and was restarted`;
    note(`${why}; its variables and imports are gone, and the next execution starts a fresh kernel`);
  }

  /** The code could not run: an `error` event, then `done` with reason `error`. */
  private fail(message: string, startedAt: number): void {
    this.log.append({ type: 'error', code: 'SANDBOX_UNAVAILABLE', error: message });
    this.stopReason = 'error';
    this.finish({ exitCode: null, signal: null, startedAt });
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
    this.runner = null;
    this.resolveFinished();
  }
}
