/**
 * A stateful kernel: one long-lived interpreter per session and language, in its own sandbox
 * on the session's workspace (same uid, limits and network as the session's other sandboxes),
 * that runs cells one at a time (packages/sandbox/runtime/kernels; messages in
 * kernel-messages.ts).
 *
 * - server → kernel, control socket: `execute {nonce, code, stdin?, stdin_eof?, env?}`, `stdin`,
 *   `stdin_eof`; interrupts are SIGINT to the kernel process.
 * - kernel → server, the same socket: `sluice.kernel_ready`, `sluice.background` for output of
 *   an ended cell's threads, and `sluice.cell_done` only from a JavaScript cell that broke fd 3.
 *   The user's events channel (fd 3) carries only the helpers' `progress`/`result` and the
 *   kernel's fences.
 *
 * A cell is over at its end: the kernel flushes the cell's output and writes a fence on the
 * events channel that carries the cell's nonce (not given to the cell's code) and its outcome;
 * placed, every byte and event written before it is in (the ordering rule of
 * events-channel.ts), so the cell ends then, with no round trip: the kernel reads the fence's
 * answer afterwards.
 *
 * The kernel's sandbox has its own cgroup for its whole life (memory, pids, CPU share), and
 * the kernel kills a cell's leftover processes before it reports the cell done, so `done`
 * still comes after every process the cell started is gone.
 */
import { assertNever } from '@sluice/protocol';
import { EventsChannel, LineReader } from '../channel/events-channel.js';
import { cgroupHost } from '../cgroups/cgroup-host.js';
import { watchCPUBudget, type CPUBudgetWatch } from '../cgroups/cpu-budget.js';
import { ExecutionCgroup } from '../cgroups/execution-cgroup.js';
import { launchSandbox, type SandboxProcess } from '../launch.js';
import { POOL_CGROUP_PREFIX } from '../prestart.js';
import { sandboxBase, type RunContext } from '../run-context.js';
import type { Runner, RunnerOutcome, RunnerRequest, RunSink } from '../runner.js';
import { runtimeFor, type KernelLanguage } from '../runtimes.js';
import { cellEndOf, parseKernelMessage, type CellDone, type KernelMessage, type KernelRequest } from './kernel-messages.js';
import { randomHex } from '../random-token.js';

/** How a cell ended, in the kernel's terms (execute() turns it into a RunnerOutcome). */
interface CellOutcome {
  exitCode: number | null;
  signal: string | null;
  /** The kernel's own verdict, or `died` when the kernel process ended during the cell. */
  status: 'ok' | 'error' | 'interrupted' | 'died';
  /** The kernel's state (variables, imports) was lost during this cell. */
  kernelRestarted: boolean;
  /** The kernel's cgroup saw OOM kills during the cell. */
  oomKills: number;
  /** The kernel could not start at all. */
  setupError: string | null;
  /** The cell broke the kernel's stdout or stderr (closed or redirected it): it was restarted. */
  broken: 'stdout' | 'stderr' | null;
}

interface ActiveCell {
  nonce: string;
  sink: RunSink;
  resolve(o: CellOutcome): void;
  finished: boolean;
  restarted: boolean;
  oomBase: number;
  /** The kernel process this cell runs in, once there is one: only its death ends the cell. */
  proc: SandboxProcess | null;
  /** Input sent before the execute message went out; null once it has. */
  early: { data: string; eof: boolean } | null;
}

/** Bytes of background output held while no cell runs; the rest is counted and reported. */
const BACKGROUND_HOLD = 64 * 1024;

export class Kernel {
  private proc: SandboxProcess | null = null;
  private cgroup: ExecutionCgroup | null = null;
  private exited: Promise<void> | null = null;
  private active: ActiveCell | null = null;
  /** Background output that came while no cell ran, for the next cell's log. */
  private background: string[] = [];
  private backgroundBytes = 0;
  private backgroundDropped = 0;
  /** The unfinished last line of background output, per stream. */
  private readonly backgroundPartial = { stdout: '', stderr: '' };
  private interruptTimer: NodeJS.Timeout | null = null;
  private version: string | null = null;
  /** Cells run since the kernel started (0: the next cell starts it). */
  cells = 0;
  lastUsedAt = Date.now();

  /** Set when the server stopped this kernel while idle (SLUICE_MAX_KERNELS); said to the next cell. */
  private evicted = false;
  /** The kernel said its last cell ended it (process.exit()); it is on its way out. */
  private exiting = false;

  /** Told when the kernel says it is ready (prestart). */
  private onReady: ((ready: boolean) => void) | null = null;
  /** A prestart still setting up; a cell waits for it rather than start a second kernel. */
  private starting: Promise<void> | null = null;
  /** Started by prestart(): its cgroup is named as a pool's (POOL_CGROUP_PREFIX). */
  private pooled = false;

  constructor(
    readonly language: KernelLanguage,
    private context: () => RunContext,
    private onStart: (k: Kernel) => void = () => {},
  ) {}

  /**
   * Starts the kernel before any cell (a pre-started kernel of the session pool): true once it
   * said it is ready, false when it could not start or died first.
   */
  async prestart(): Promise<boolean> {
    if (this.proc || this.active || this.starting) return this.proc !== null;
    const ready = new Promise<boolean>((r) => (this.onReady = r));
    this.pooled = true;
    this.starting = this.start().finally(() => (this.starting = null));
    try {
      await this.starting;
    } catch {
      this.onReady = null;
      return false;
    }
    return ready;
  }

  /**
   * Gives a pre-started kernel to the session that adopts it: the context it restarts in and
   * who is told when it starts again. The context must be the one it was started in (same
   * workspace, uid and sandbox settings).
   */
  adopt(context: () => RunContext, onStart: (k: Kernel) => void): void {
    this.context = context;
    this.onStart = onStart;
    // A restart is the session's own kernel.
    this.pooled = false;
  }

  /** Stops an idle kernel to free its memory; the session's next cell is told its state is gone. */
  async evict(): Promise<void> {
    if (this.active || !this.proc) return;
    this.evicted = true;
    await this.shutdown();
  }

  /** True while a kernel process is up (its state is worth keeping). */
  get running(): boolean {
    return this.proc !== null;
  }

  get busy(): boolean {
    return this.active !== null;
  }

  /**
   * Runs one cell, starting the kernel first when it is not running. `request.stdin`, when
   * given, is the cell's whole input; otherwise input comes through the runner's writeStdin.
   */
  execute(request: RunnerRequest, sink: RunSink): Runner {
    if (this.active) throw new Error('kernel: a cell is already running');
    this.lastUsedAt = Date.now();
    const nonce = randomHex(16);
    let resolve!: (o: CellOutcome) => void;
    const done = new Promise<CellOutcome>((r) => (resolve = r));
    this.active = { nonce, sink, resolve, finished: false, restarted: false, oomBase: 0, proc: null, early: { data: '', eof: false } };
    const active = this.active;
    this.deliverBackground(active);
    void this.begin(active, request).catch((err: unknown) => {
      this.finishCell({
        exitCode: null,
        signal: null,
        status: 'died',
        kernelRestarted: false,
        oomKills: 0,
        setupError: (err as Error).message,
        broken: null,
      });
    });
    const name = this.language === 'python' ? 'Python' : 'JavaScript';
    return {
      done: done.then((o): RunnerOutcome => {
        const died = o.status === 'died';
        return {
          // An interrupted cell says 130 (the kernel's verdict); a dead kernel's own status is the truth.
          exitCode: o.exitCode,
          signal: died ? o.signal : null,
          setupError: o.setupError === null ? null : `the ${name} kernel failed to start: ${o.setupError}`,
          oomKilled: died && o.oomKills > 0,
          oomKills: died ? 0 : o.oomKills,
          pidsMaxHits: 0,
          kernelRestart: o.kernelRestarted ? { died, broken: o.broken } : null,
        };
      }),
      // SIGINT first; a kernel that ignores it for the grace period is restarted. An immediate
      // stop (output flood) still gets a short chance to keep the kernel's state.
      stop: (graceMs) => this.interrupt(Math.max(graceMs, 500)),
      watchCPU: (budgetNs, onExceeded) => this.watchCellCPU(budgetNs, onExceeded),
      // Until the execute message is out (the kernel may still be starting), input waits here:
      // the kernel drops stdin that comes before its cell.
      writeStdin: (data) => {
        if (this.active !== active) return;
        if (active.early) active.early.data += data;
        else this.send({ type: 'stdin', data });
      },
      endStdin: () => {
        if (this.active !== active) return;
        if (active.early) active.early.eof = true;
        else this.send({ type: 'stdin_eof' });
      },
      get stdinBacklog(): number {
        return (active.early ? Buffer.byteLength(active.early.data) : 0) + (active.proc?.controlBacklog ?? 0);
      },
    };
  }

  /**
   * Interrupts the running cell: SIGINT to the kernel, then, if the cell has not ended after
   * `graceMs`, a restart (the kernel is killed; the next cell starts a fresh one).
   */
  interrupt(graceMs: number): void {
    const active = this.active;
    const proc = this.proc;
    if (!active || !proc) return;
    void proc.programPID().then((pid) => {
      if (pid === null || this.active !== active) return;
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // Gone already: its exit ends the cell.
      }
    });
    this.interruptTimer ??= setTimeout(() => {
      this.interruptTimer = null;
      if (this.active !== active) return;
      active.restarted = true;
      void this.shutdown();
    }, graceMs);
  }

  /** Kills the kernel (its state is lost); a running cell ends as `died` with kernelRestarted. */
  async shutdown(): Promise<void> {
    // A prestart still setting up would otherwise launch its kernel after this returned.
    if (this.starting) await this.starting.catch(() => undefined);
    const proc = this.proc;
    if (this.active) this.active.restarted = true;
    if (!proc) return;
    proc.kill();
    await this.exited;
  }

  private async begin(active: NonNullable<Kernel['active']>, { code, stdin, env }: RunnerRequest): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.exiting && this.proc) await this.exited;
    if (!this.proc) {
      if (this.evicted) {
        active.sink.note(`this session's ${this.language} kernel was stopped while idle to make room for others (SLUICE_MAX_KERNELS); its variables and imports are gone`);
        this.evicted = false;
      }
      await this.start();
      this.onStart(this);
    }
    if (this.active !== active) return;
    active.proc = this.proc;
    // Read now, not kept from the last cell's end: a background process killed between cells is not this cell's.
    active.oomBase = this.cgroup?.oomKills() ?? 0;
    this.cells++;
    const early = active.early ?? { data: '', eof: false };
    active.early = null;
    const data = (stdin ?? '') + early.data;
    this.send({
      type: 'execute',
      nonce: active.nonce,
      code,
      ...(data !== '' ? { stdin: data } : {}),
      ...(stdin !== undefined || early.eof ? { stdin_eof: true as const } : {}),
      ...(Object.keys(env).length > 0 ? { env } : {}),
    });
  }

  private send(request: KernelRequest): void {
    this.proc?.writeControl(JSON.stringify(request));
  }

  /**
   * Output of an ended cell's thread or callback: whole lines, each marked, in the running
   * cell's log (on stderr: it is not that cell's output) or held for the next.
   */
  private onBackground(stream: 'stdout' | 'stderr', text: string): void {
    const partial = this.backgroundPartial[stream] + text;
    const cut = partial.lastIndexOf('\n') + 1;
    // A line that never ends still comes out, in pieces of a bounded size.
    const upTo = cut > 0 ? cut : partial.length > 4096 ? partial.length : 0;
    this.backgroundPartial[stream] = partial.slice(upTo);
    if (upTo > 0) this.markBackground(stream, partial.slice(0, upTo));
  }

  private markBackground(stream: 'stdout' | 'stderr', text: string): void {
    const marked = text
      .split('\n')
      .filter((line, i, all) => i < all.length - 1 || line !== '')
      .map((line) => `[background ${stream}] ${line}\n`)
      .join('');
    const a = this.active;
    if (a && !a.finished) return a.sink.output('stderr', Buffer.from(marked));
    const bytes = Buffer.byteLength(marked);
    if (this.backgroundBytes + bytes > BACKGROUND_HOLD) {
      this.backgroundDropped += bytes;
      return;
    }
    this.background.push(marked);
    this.backgroundBytes += bytes;
  }

  private deliverBackground(a: ActiveCell): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.backgroundPartial[stream];
      this.backgroundPartial[stream] = '';
      if (rest !== '') this.markBackground(stream, rest);
    }
    if (this.background.length === 0 && this.backgroundDropped === 0) return;
    a.sink.note('output written by an earlier cell\'s threads or callbacks after that cell ended follows, each line marked [background …]');
    for (const text of this.background) a.sink.output('stderr', Buffer.from(text));
    if (this.backgroundDropped > 0) a.sink.note(`${this.backgroundDropped} more bytes of such background output were discarded (at most ${BACKGROUND_HOLD} are kept between cells)`);
    this.background = [];
    this.backgroundBytes = 0;
    this.backgroundDropped = 0;
  }

  private async start(): Promise<void> {
    const ctx = this.context();
    const host = await cgroupHost(ctx.cgroupParent);
    this.cgroup =
      host.version === 'none'
        ? null
        : await ExecutionCgroup.create(host, `${this.pooled ? POOL_CGROUP_PREFIX : ''}k${randomHex(12)}`, {
            memoryBytes: ctx.memoryBytes,
            cpuQuota: ctx.cpu,
            ...(ctx.limits.processes !== undefined ? { pids: ctx.limits.processes } : {}),
          }).catch(() => null);
    const cgroup = this.cgroup;
    const memory = cgroup ? ctx.memoryBytes : undefined;
    const runtime = runtimeFor(this.language);
    if (!runtime?.kernel) throw new Error(`no kernel for ${this.language}`);
    const command = runtime.kernel.command(memory);
    const channel = new EventsChannel({
      event: (e) => {
        const a = this.active;
        if (!a || a.finished) return;
        a.sink.event(e);
      },
      malformed: (note) => this.active?.sink.note(note),
      ack: (count) => proc.ackEvents(count),
      fence: (id, line) => {
        const a = this.active;
        if (!a || a.finished || id !== a.nonce) return;
        const end = cellEndOf(id, line['done']);
        if (typeof end === 'string') return a.sink.note(`the kernel's end of cell was malformed (${end})`);
        this.cellEnded(a, end, false);
      },
    });
    const control = new LineReader(
      (line) => this.onControlLine(line),
      () => undefined,
    );
    const proc = launchSandbox({
      ...sandboxBase(ctx, runtime, cgroup),
      codePath: '/run/sluice/kernel',
      code: '',
      command,
      control: true,
      onOutput: (stream, chunk) => {
        const a = this.active;
        // Between cells only an ended cell's background writers print; the kernel marks what
        // it can (sluice.background), and this is the rest: fd-level writes.
        if (a && !a.finished) a.sink.output(stream, chunk);
        else this.onBackground(stream, chunk.toString('utf8'));
      },
      onEvents: (chunk) => channel.write(chunk),
      onControl: (chunk) => control.write(chunk),
    });
    channel.attach(proc.events);
    control.attach(proc.control);
    this.proc = proc;
    if (this.active) this.active.proc = proc;
    this.exited = proc.exited.then(async (exit) => {
      await new Promise<void>((r) => setImmediate(r));
      channel.end();
      control.end();
      const stats = await cgroup?.stats().catch(() => null);
      await cgroup?.destroy().catch(() => undefined);
      if (this.proc === proc) {
        this.proc = null;
        this.exiting = false;
      }
      if (this.cgroup === cgroup) {
        this.cgroup = null;
      }
      this.cells = 0;
      this.onReady?.(false);
      this.onReady = null;
      const a = this.active;
      if (a && !a.finished && a.proc === proc) {
        this.finishCell({
          exitCode: exit.exitCode,
          signal: exit.signal,
          status: 'died',
          kernelRestarted: true,
          oomKills: Math.max(0, (stats?.oomKills ?? 0) - a.oomBase),
          setupError: exit.setupError,
          broken: null,
        });
      }
    });
  }

  private onControlLine(raw: string): void {
    const line = raw.trim();
    if (line === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return;
    }
    const m = parseKernelMessage(v);
    // Only the kernel's loop writes here; a line it did not write is dropped.
    if (typeof m !== 'string') this.onKernelMessage(m);
  }

  private onKernelMessage(m: KernelMessage): void {
    switch (m.type) {
      case 'sluice.kernel_ready':
        this.version = m.version;
        this.onReady?.(true);
        this.onReady = null;
        return;
      case 'sluice.cell_done': {
        const a = this.active;
        if (!a || a.finished || m.nonce !== a.nonce) return;
        // The kernel placed its fence before writing this line: by the check phase after this
        // poll, every byte and event of the cell is in.
        this.cellEnded(a, m, true);
        return;
      }
      case 'sluice.background':
        this.onBackground(m.stream, m.text);
        return;
      default:
        assertNever(m, 'kernel message');
    }
  }

  /** The kernel said the cell is over: it ends now, or in the next check phase (`deferred`). */
  private cellEnded(a: ActiveCell, m: CellDone, deferred: boolean): void {
    if (m.exiting) {
      // Its state goes with it; the next cell waits for it to be gone and starts another.
      a.restarted = true;
      this.exiting = true;
    }
    if (deferred) setImmediate(() => this.endCell(a, m));
    else this.endCell(a, m);
  }

  private endCell(a: ActiveCell, m: CellDone): void {
    if (a.finished || this.active !== a) return;
    const oom = this.cgroup?.oomKills();
    this.finishCell({
      exitCode: m.exit_code,
      signal: null,
      status: m.status,
      kernelRestarted: a.restarted,
      // OOM kills inside the cell (a child, since the kernel itself survived) are worth a note.
      oomKills: Math.max(0, (oom ?? 0) - a.oomBase),
      setupError: null,
      broken: m.broken,
    });
  }

  private finishCell(o: CellOutcome): void {
    const a = this.active;
    if (!a || a.finished) return;
    a.finished = true;
    if (this.interruptTimer) clearTimeout(this.interruptTimer);
    this.interruptTimer = null;
    this.active = null;
    this.lastUsedAt = Date.now();
    a.resolve({ ...o, kernelRestarted: o.kernelRestarted || a.restarted });
  }

  /**
   * Watches the CPU time the kernel's cgroup spends from now on (the running cell's), calling
   * `onExceeded` once it passes `budgetNs`. Null where the host has no cgroups.
   */
  watchCellCPU(budgetNs: number, onExceeded: () => void): CPUBudgetWatch | null {
    let base: number | undefined;
    return watchCPUBudget(
      {
        cpuUsageNs: async () => {
          const used = await this.cgroup?.cpuUsageNs();
          if (used === undefined) return undefined;
          base ??= used;
          return used - base;
        },
      },
      { budgetNs, onExceeded },
    );
  }

  /** What GET /api/sessions/{id} says about this kernel. */
  describe(): { language: KernelLanguage; state: 'idle' | 'busy'; cells: number; version: string | null } {
    return { language: this.language, state: this.active ? 'busy' : 'idle', cells: this.cells, version: this.version };
  }
}
