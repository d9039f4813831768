/**
 * Starts one command in a bubblewrap sandbox through the verified launch chain (docs/sandbox.md):
 *
 *   keeper (perl: dies with us, reaps the sandbox, closes inherited fds) → prlimit (rlimits)
 *   → setpriv (drop to the session's uid, when we are root) → bwrap --args 3 → PID 1 of the
 *   new namespaces → status reporter (perl) → the command
 *
 * bwrap gets the seccomp filter (seccomp/build-filter.ts) on fd 7 and installs it in PID 1 and
 * before exec'ing the reporter, so everything inside runs under it.
 *
 * bwrap runs with an empty environment (its own environ is readable at /proc/1/environ inside)
 * and never as root (root-launched bwrap maps the sandbox to host uid 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { buildBwrapOptions, serializeBwrapArgs, type BwrapSpec } from './bwrap-options.js';
import { KEEPER_SCRIPT } from './internal/keeper-script.js';
import { PERL, REPORTER_PATH } from './internal/reporter-script.js';
import { buildSeccompFilter } from './seccomp/build-filter.js';
import { programPID, programStarted, signalNamespace } from './signal-namespace.js';

/** rlimits applied to every process of the sandbox (prlimit names). */
export interface RLimits {
  /** Largest file, bytes (RLIMIT_FSIZE). */
  fileSize: number;
  /** Open files per process (RLIMIT_NOFILE). */
  openFiles: number;
  /** Processes and threads of the host uid (RLIMIT_NPROC); only meaningful with a uid per session. */
  processes?: number;
}

export interface LaunchSpec extends Omit<BwrapSpec, 'codeFD' | 'statusFD' | 'seccompFD'> {
  bwrapPath: string;
  /** Host uid/gid to drop to before bwrap; undefined when the server is not root (bwrap then runs as us). */
  hostUID: number | undefined;
  command: readonly string[];
  code: string;
  /**
   * Pre-start (prestart.ts): everything up to the code is done now, and bwrap waits, reading
   * the code file from its pipe, until begin() gives the code, the run's own variables and its
   * stdin; `code` and `stdin` here are unused.
   */
  deferred?: boolean;
  /**
   * Data for the program's stdin, then end of file. Undefined keeps stdin open: the caller
   * writes to it with writeStdin() and ends it with endStdin() (interactive programs).
   */
  stdin?: string;
  /**
   * Open a control socket (fd 4 inside: SLUICE_CONTROL_FD); kernels use it both ways: requests
   * in, their own messages (`onControl`) out, apart from the user's events channel.
   */
  control?: boolean;
  limits: RLimits;
  /** cgroup.procs files the sandbox joins before the privilege drop (empty: no cgroups). */
  cgroupProcsFiles?: readonly string[];
  /** Receives output as raw bytes, in the order read, from the moment the sandbox is up. */
  onOutput(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** Receives the raw bytes the program writes to its events fd (SLUICE_EVENTS_FD, 3 inside). */
  onEvents?(chunk: Buffer): void;
  /** Receives the raw bytes a kernel writes to its control socket. */
  onControl?(chunk: Buffer): void;
}

/** How the sandboxed command ended. */
export interface SandboxExit {
  /** The command's exit status as bwrap reports it (signals as 128+n); null if it never started. */
  exitCode: number | null;
  /** Signal name when the status says the command died of a signal. */
  signal: string | null;
  /** Set when the sandbox itself failed to start (bwrap's own complaint). */
  setupError: string | null;
}

const CODE_FD = 5;
const STATUS_FD = 4;
const ARGS_FD = 3;
/** The reporter's `exit N` / `signal N` line arrives on this fd. */
const EXIT_FD = 6;
/** bwrap reads the seccomp BPF from this fd; the keeper closes every fd above it. */
const SECCOMP_FD = 7;
/** Events pipe (program → server); the reporter moves it to fd 3 for the program. */
const EVENTS_FD = 8;
/** Control pipe (server → kernel); the reporter moves it to fd 4 for the program. */
const CONTROL_FD = 9;
/** A deferred launch's per-run variables (NUL-separated NAME=VALUE), read by the reporter before it forks. */
const RUN_ENV_FD = 10;
/** The fds the program sees them on. */
export const PROGRAM_EVENTS_FD = 3;
export const PROGRAM_CONTROL_FD = 4;
/** Bytes of bwrap's own stderr kept to explain a failed start. */
const SETUP_STDERR_LIMIT = 16 * 1024;
/** The byte that acknowledges a `"sync": true` line on the events socket. */
const ACK = 0x06;
/**
 * Acknowledgements the program has not read may wait in our buffer up to this many bytes
 * (past the socket's own); a program that writes sync lines and never reads the answers gets
 * no more of them, and we hold nothing more for it.
 */
const MAX_UNREAD_ACKS = 64 * 1024;

/** A running sandboxed process. */
export class SandboxProcess {
  /** Resolves once the sandbox and everything in it are gone. */
  readonly exited: Promise<SandboxExit>;
  private readonly child: ChildProcess;
  private initPID: number | null = null;
  private pidNS: number | null = null;
  private exitCode: number | null = null;
  private closed = false;
  private setupStderr: Buffer[] = [];
  private setupStderrBytes = 0;
  private pendingStop: { graceMs: number } | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private startFallback: NodeJS.Timeout | null = null;
  private stdinPipe: Writable | null = null;
  private controlPipe: (Readable & Writable) | null = null;
  private eventsPipe: (Readable & Writable) | null = null;
  /** A deferred launch's code and run-env pipes, until begin() ends them. */
  private deferred: { code: Writable; runEnv: Writable; stdin: Writable | null } | null = null;
  private readonly reserved: readonly string[];

  constructor(spec: LaunchSpec) {
    // Before spawning: an architecture without a syscall table throws here, and the sandbox
    // never starts without its filter.
    const filter = seccompFilter(spec.network);
    const env: Record<string, string> = { ...spec.env, SLUICE_EVENTS_FD: String(PROGRAM_EVENTS_FD) };
    if (spec.control) env['SLUICE_CONTROL_FD'] = String(PROGRAM_CONTROL_FD);
    this.reserved = spec.control ? ['SLUICE_EVENTS_FD', 'SLUICE_CONTROL_FD'] : ['SLUICE_EVENTS_FD'];
    const options = buildBwrapOptions({ ...spec, env, codeFD: CODE_FD, statusFD: STATUS_FD, seccompFD: SECCOMP_FD });
    const chain: string[] = [
      '/usr/bin/prlimit',
      '--core=0',
      `--fsize=${spec.limits.fileSize}`,
      `--nofile=${spec.limits.openFiles}`,
      ...(spec.limits.processes !== undefined && spec.hostUID !== undefined ? [`--nproc=${spec.limits.processes}`] : []),
      '--',
    ];
    if (spec.hostUID !== undefined) {
      chain.push('/usr/bin/setpriv', `--reuid=${spec.hostUID}`, `--regid=${spec.hostUID}`, '--clear-groups', '--inh-caps=-all', '--');
    }
    chain.push(spec.bwrapPath, '--args', String(ARGS_FD), '--', PERL, REPORTER_PATH, ...spec.command);

    // Empty environment: bwrap's own environ is readable inside at /proc/1/environ.
    const cgroups = spec.cgroupProcsFiles ?? [];
    const deferred = spec.deferred === true;
    // The keeper closes every fd above the last one the chain uses (10 only for a deferred launch).
    const lastFD = deferred ? RUN_ENV_FD : CONTROL_FD;
    this.child = spawn(PERL, ['-e', KEEPER_SCRIPT, String(lastFD), String(cgroups.length), ...cgroups, ...chain], {
      env: {},
      cwd: '/',
      // Its own process group: a terminal's Ctrl-C meant for the server must not kill sandboxes
      // (the server drains them); PDEATHSIG still ties them to the server's life.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', spec.control ? 'pipe' : 'ignore', ...(deferred ? (['pipe'] as const) : [])],
    });
    const child = this.child;

    let statusBuf = '';
    let exitBuf = '';
    // Without a pid the spawn failed (EMFILE, ENOMEM…): there are no pipes, and the 'error'
    // event (handled below) reports it; touching the pipes would throw and crash the server.
    if (child.pid !== undefined) {
      const stdio = child.stdio as unknown as (Readable | Writable | null)[];
      const argsPipe = stdio[ARGS_FD] as Writable;
      const codePipe = stdio[CODE_FD] as Writable;
      const statusPipe = stdio[STATUS_FD] as Readable;
      const exitPipe = stdio[EXIT_FD] as Readable;
      const seccompPipe = stdio[SECCOMP_FD] as Writable;
      // EPIPE here means bwrap died early; its exit status tells the story.
      for (const s of [argsPipe, codePipe, seccompPipe]) s.on('error', () => {});
      argsPipe.end(serializeBwrapArgs(options));
      seccompPipe.end(filter);
      // EPIPE: the program closed its stdin or exited; what it did not read is lost, as in a shell.
      child.stdin?.on('error', () => {});
      if (deferred) {
        const runEnv = stdio[RUN_ENV_FD] as Writable;
        runEnv.on('error', () => {});
        this.deferred = { code: codePipe, runEnv, stdin: child.stdin };
      } else {
        codePipe.end(spec.code);
        if (child.stdin) {
          if (spec.stdin !== undefined) child.stdin.end(spec.stdin);
          else this.stdinPipe = child.stdin;
        }
      }
      if (spec.control) {
        const control = stdio[CONTROL_FD] as Readable & Writable;
        this.controlPipe = control;
        control.on('error', () => {});
        control.on('data', (chunk: Buffer) => spec.onControl?.(chunk));
      }
      // A socket both ways (libuv makes child stdio as socketpairs): events in, acks out.
      const eventsPipe = stdio[EVENTS_FD] as Readable & Writable;
      this.eventsPipe = eventsPipe;
      eventsPipe.on('error', () => {});
      eventsPipe.on('data', (chunk: Buffer) => spec.onEvents?.(chunk));

      child.stdout?.on('data', (chunk: Buffer) => spec.onOutput('stdout', chunk));
      child.stderr?.on('data', (chunk: Buffer) => {
        if (this.initPID !== null) return spec.onOutput('stderr', chunk);
        // Before the sandbox is up, stderr is bwrap's (or setpriv's) own; hold it to explain a failure.
        if (this.setupStderrBytes < SETUP_STDERR_LIMIT) {
          this.setupStderr.push(chunk);
          this.setupStderrBytes += chunk.length;
        }
      });

      statusPipe.setEncoding('utf8');
      statusPipe.on('data', (text: string) => {
        statusBuf += text;
        let nl: number;
        while ((nl = statusBuf.indexOf('\n')) >= 0) {
          this.onStatus(statusBuf.slice(0, nl), spec);
          statusBuf = statusBuf.slice(nl + 1);
        }
        if (statusBuf.length > 64 * 1024) statusBuf = '';
      });

      exitPipe.setEncoding('utf8');
      exitPipe.on('data', (text: string) => {
        if (exitBuf.length < 256) exitBuf += text;
      });
    }

    this.exited = new Promise<SandboxExit>((resolve) => {
      child.on('error', (err) => {
        this.closed = true;
        this.clearTimers();
        resolve({ exitCode: null, signal: null, setupError: `could not start the sandbox: ${err.message}` });
      });
      child.on('close', (code, signal) => {
        this.closed = true;
        this.clearTimers();
        if (statusBuf.trim() !== '') this.onStatus(statusBuf, spec);
        if (this.initPID === null) {
          const text = Buffer.concat(this.setupStderr).toString('utf8').trim();
          resolve({
            exitCode: null,
            signal: null,
            setupError: text || `the sandbox exited before starting (status ${code ?? signal ?? 'unknown'})`,
          });
          return;
        }
        const m = /^(exit|signal) (\d+)\n/.exec(exitBuf);
        if (m) {
          const n = Number(m[2]);
          resolve(m[1] === 'signal' ? { exitCode: 128 + n, signal: signalName(n), setupError: null } : { exitCode: n, signal: null, setupError: null });
          return;
        }
        // No report: the reporter itself was killed (SIGKILL to PID 1), so the number is 128+n.
        const exitCode = this.exitCode ?? code ?? (signal ? 128 + (signalNumber(signal) ?? 9) : null);
        resolve({ exitCode, signal: exitCode !== null && exitCode > 128 ? signalName(exitCode - 128) : null, setupError: null });
      });
    });
  }

  /**
   * Runs a deferred launch's program: `env` over the sandbox's variables (those the launch
   * itself sets, the SLUICE_*_FD, stay), then the code, then stdin as a launch's `stdin` (its
   * whole input, or undefined to keep it open). False when it is not deferred, already begun
   * or gone.
   */
  begin(run: { code: string; env: Record<string, string>; stdin: string | undefined }): boolean {
    const d = this.deferred;
    if (!d || this.closed) return false;
    let message = '';
    for (const [name, value] of Object.entries(run.env)) {
      if (this.reserved.includes(name)) continue;
      // The protocol allows neither (requests.ts); the message format could not carry them.
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || value.includes('\0')) throw new TypeError(`invalid environment variable ${JSON.stringify(name)}`);
      message += `${name}=${value}\0`;
    }
    this.deferred = null;
    // The reporter reads its variables to EOF before it forks; bwrap reads the code before it
    // execs the reporter.
    d.runEnv.end(message);
    d.code.end(run.code);
    if (d.stdin) {
      if (run.stdin !== undefined) d.stdin.end(run.stdin);
      else this.stdinPipe = d.stdin;
    }
    return true;
  }

  /** True once the sandbox and everything in it are gone. */
  get gone(): boolean {
    return this.closed;
  }

  /**
   * Writes to the program's stdin (kept open when the spec gave no `stdin`). Returns false once
   * stdin is closed. Writes are queued by the stream; callers bound what they send.
   */
  writeStdin(data: string | Buffer): boolean {
    if (!this.stdinPipe || this.stdinPipe.writableEnded || this.stdinPipe.destroyed) return false;
    this.stdinPipe.write(data);
    return true;
  }

  /** Closes the program's stdin (end of file). Idempotent. */
  endStdin(): void {
    if (this.stdinPipe && !this.stdinPipe.writableEnded) this.stdinPipe.end();
  }

  /** Bytes queued for stdin that the program has not read yet. */
  get stdinBacklog(): number {
    return this.stdinPipe?.writableLength ?? 0;
  }

  /**
   * Answers `count` sync lines of the events channel: each gets one byte, which its helper
   * waits for before it returns. Dropped once MAX_UNREAD_ACKS wait unread.
   */
  ackEvents(count: number): void {
    const pipe = this.eventsPipe;
    if (count <= 0 || !pipe || pipe.destroyed || pipe.writableEnded) return;
    if (pipe.writableLength + count > MAX_UNREAD_ACKS) return;
    pipe.write(Buffer.alloc(count, ACK));
  }

  /** Pauses and resumes reading the events channel (the program blocks once its socket is full). */
  readonly events = {
    pause: (): void => void this.eventsPipe?.pause(),
    resume: (): void => void this.eventsPipe?.resume(),
  };

  /** Pauses and resumes reading a kernel's control socket. */
  readonly control = {
    pause: (): void => void this.controlPipe?.pause(),
    resume: (): void => void this.controlPipe?.resume(),
  };

  /** Bytes queued for the control pipe that the kernel has not read yet. */
  get controlBacklog(): number {
    return this.controlPipe?.writableLength ?? 0;
  }

  /** Sends one line to a kernel's control pipe; false when there is none or it is closed. */
  writeControl(line: string): boolean {
    const pipe = this.controlPipe;
    if (!pipe || pipe.writableEnded || pipe.destroyed) return false;
    pipe.write(line.endsWith('\n') ? line : `${line}\n`);
    return true;
  }

  /** Host pid of the program itself (the reporter's child), or null when it is not running. */
  async programPID(): Promise<number | null> {
    if (this.initPID === null || this.closed) return null;
    return programPID(this.initPID).catch(() => null);
  }

  /** Host pid of the sandbox's PID 1, once known. */
  get pid(): number | null {
    return this.initPID;
  }

  /**
   * Stops everything in the sandbox: SIGTERM to every process but PID 1, then after `graceMs`
   * SIGKILL to PID 1, which tears the whole PID namespace down. Idempotent.
   */
  stop(graceMs: number): void {
    if (this.closed) return;
    if (this.initPID === null || this.pidNS === null) {
      // Not up yet: remember, and act as soon as bwrap reports its child.
      this.pendingStop ??= { graceMs };
      this.startFallback ??= setTimeout(() => this.killOuter(), 2000);
      return;
    }
    if (graceMs <= 0) return this.kill();
    if (this.graceTimer) return;
    const ns = this.pidNS;
    const init = this.initPID;
    this.graceTimer = setTimeout(() => this.kill(), graceMs);
    // Right after start the program may not exist yet: nothing to be graceful to, so kill at
    // once rather than let it start and run through the whole grace period.
    void programStarted(init)
      .then(async (started) => {
        if (started) await signalNamespace(ns, 'SIGTERM', init);
        else this.kill();
      })
      .catch(() => this.kill());
  }

  /** SIGKILL to the sandbox's PID 1: every process in it dies at once. Idempotent. */
  kill(): void {
    if (this.closed) return;
    if (this.initPID === null) {
      this.pendingStop = { graceMs: 0 };
      this.startFallback ??= setTimeout(() => this.killOuter(), 2000);
      return;
    }
    // Safe from pid reuse: PID 1 is bwrap's child and cannot be reaped while bwrap (not closed) lives.
    try {
      process.kill(this.initPID, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private killOuter(): void {
    // Last resort when bwrap never reported its child: --die-with-parent takes the sandbox down with it.
    if (!this.closed) this.child.kill('SIGKILL');
  }

  private onStatus(line: string, spec: LaunchSpec): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as Record<string, unknown>;
    if (typeof m['child-pid'] === 'number' && this.initPID === null) {
      this.initPID = m['child-pid'];
      this.pidNS = typeof m['pid-namespace'] === 'number' ? m['pid-namespace'] : null;
      if (this.startFallback) clearTimeout(this.startFallback);
      this.startFallback = null;
      // stderr that raced ahead of the status line is the program's: deliver it.
      for (const chunk of this.setupStderr) spec.onOutput('stderr', chunk);
      this.setupStderr = [];
      const pending = this.pendingStop;
      this.pendingStop = null;
      if (pending) this.stop(pending.graceMs);
    }
    if (typeof m['exit-code'] === 'number') this.exitCode = m['exit-code'];
  }

  private clearTimers(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.startFallback) clearTimeout(this.startFallback);
    this.graceTimer = null;
    this.startFallback = null;
  }
}

/** The filter for this process's architecture, built once per network setting. */
const filters = new Map<boolean, Buffer>();
function seccompFilter(network: boolean): Buffer {
  let filter = filters.get(network);
  if (!filter) {
    filter = buildSeccompFilter(process.arch, { network });
    filters.set(network, filter);
  }
  return filter;
}

/** Launches a sandboxed command. */
export function launchSandbox(spec: LaunchSpec): SandboxProcess {
  return new SandboxProcess(spec);
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
  24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS',
};

/** Name of a Linux signal number (`SIG…`), or `SIG<n>` for unusual ones. */
export function signalName(n: number): string {
  return SIGNALS[n] ?? `SIG${n}`;
}

function signalNumber(name: string): number | undefined {
  for (const [n, s] of Object.entries(SIGNALS)) if (s === name) return Number(n);
  return undefined;
}
