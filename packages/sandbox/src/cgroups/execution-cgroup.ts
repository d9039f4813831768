/**
 * One execution's cgroup: created with its limits before the sandbox starts, joined by the
 * keeper's child before it drops privileges (docs/sandbox.md, "Launch chain"), read for the outcome
 * (OOM kills, peak memory, CPU time, pids limit hits), emptied and removed afterwards.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { posix } from 'node:path';
import { CgroupError, errnoOf } from './cgroup-error.js';
import type { ActiveCgroupSupport } from './cgroup-support.js';
import { exists, makeGroupDir, readControl, readOptionalControl, removeGroupDir, writeControl } from './control-files.js';
import { flatKeyedValue, parseCount, parsePIDList } from './flat-keyed.js';
import { controllerDir, groupDirs, validateGroupName } from './group-paths.js';
import { limitWrites, unenforcedLimits, type CgroupLimits } from './limit-writes.js';

/** What the group's counters say; a field is absent when this host lacks its controller or file. */
export interface CgroupStats {
  /** Processes the kernel OOM-killed in the group (v2 memory.events `oom_kill`, v1 memory.oom_control `oom_kill`). */
  oomKills?: number;
  /** Highest memory use seen, bytes (v2 memory.peak, kernel ≥ 5.19; v1 memory.max_usage_in_bytes). */
  memoryPeakBytes?: number;
  /** CPU time of every task that ever ran in the group, ns (v2 cpu.stat `usage_usec`, v1 cpuacct.usage). */
  cpuUsageNs?: number;
  /** Times a fork/clone was refused by pids.max (pids.events `max`). */
  pidsMaxHits?: number;
  /** Tasks (processes and threads) now in the group (pids.current). */
  pidsCurrent?: number;
}

/** How killAll() went. */
export interface KillAllResult {
  /** True when no process is left in the group. */
  empty: boolean;
  /** Rounds of reading cgroup.procs (and SIGKILLing what was listed, in v1). */
  rounds: number;
  /** Pids still listed when the time ran out. */
  remaining: number[];
}

/** Bounds for killAll(). */
export interface KillAllOptions {
  /** Give up after this long, ms (default 5000; a 64-task fork bomb took ≤ 2 s here). */
  timeoutMs?: number;
  /** Pause between rounds, ms (default 20). */
  intervalMs?: number;
}

/** Bounds for destroy(). */
export interface DestroyOptions extends KillAllOptions {
  /** rmdir attempts per directory while the kernel still reports EBUSY (default 50). */
  rmdirAttempts?: number;
}

/** A per-execution cgroup (one directory in v2, one per hierarchy in v1). */
export class ExecutionCgroup {
  /** The group's name under our parent group. */
  readonly name: string;
  /** The host's cgroup setup the group lives in. */
  readonly support: ActiveCgroupSupport;
  /** The group's directories (v2: one; v1: one per hierarchy). */
  readonly dirs: readonly string[];
  /** Limits asked for that this host cannot enforce (their controller is missing). */
  readonly unenforced: readonly (keyof CgroupLimits)[];

  /** memory.events (v1: memory.oom_control), kept open for oomKills(); null until first read. */
  private oomFd: number | null = null;

  private constructor(support: ActiveCgroupSupport, name: string, unenforced: (keyof CgroupLimits)[]) {
    this.support = support;
    this.name = name;
    this.dirs = groupDirs(support, name);
    this.unenforced = unenforced;
  }

  /**
   * Creates group `name` (which must not exist yet) with `limits`. On any failure the
   * directories it made are removed again and a CgroupError names the file and errno.
   */
  static async create(support: ActiveCgroupSupport, name: string, limits: CgroupLimits): Promise<ExecutionCgroup> {
    validateGroupName(name);
    const writes = limitWrites(support, name, limits);
    const group = new ExecutionCgroup(support, name, unenforcedLimits(support, limits));
    const made: string[] = [];
    try {
      for (const dir of group.dirs) {
        if (!(await makeGroupDir(dir))) {
          throw new CgroupError('mkdir', dir, 'EEXIST', `cgroup: cannot create cgroup ${dir}: EEXIST (a group of that name already exists; names must be unique per execution)`);
        }
        made.push(dir);
      }
      for (const w of writes) {
        if (w.optional && !(await exists(w.file))) continue;
        await writeControl(w.file, w.value);
      }
    } catch (err) {
      for (const dir of made.reverse()) await removeGroupDir(dir).catch(() => {});
      throw err;
    }
    return group;
  }

  /** A handle on an existing group `name` (for sweeping, or a group made by an earlier handle). */
  static attach(support: ActiveCgroupSupport, name: string): ExecutionCgroup {
    return new ExecutionCgroup(support, name, []);
  }

  /**
   * The `cgroup.procs` files a process writes its own pid into to join the group; it must
   * write to every one of them (v1 has a tree per controller) before it forks or drops privileges.
   */
  procsFiles(): string[] {
    return this.dirs.map((d) => posix.join(d, 'cgroup.procs'));
  }

  /** Pids of the processes now in the group (union over the hierarchies); [] once it is removed. */
  async pids(): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles()) {
      const text = await readOptionalControl(file);
      if (text !== undefined) for (const pid of parsePIDList(text)) all.add(pid);
    }
    return [...all];
  }

  /** The group's counters; absent fields mean "not available on this host". */
  async stats(): Promise<CgroupStats> {
    const out: CgroupStats = {};
    const v2 = this.support.version === 'v2';
    const mem = controllerDir(this.support, this.name, 'memory');
    if (mem !== undefined) {
      const events = await readOptionalControl(posix.join(mem, v2 ? 'memory.events' : 'memory.oom_control'));
      const oom = events === undefined ? undefined : flatKeyedValue(events, 'oom_kill');
      if (oom !== undefined) out.oomKills = oom;
      const peak = await readOptionalControl(posix.join(mem, v2 ? 'memory.peak' : 'memory.max_usage_in_bytes'));
      if (peak !== undefined) out.memoryPeakBytes = parseCount(peak);
    }
    const cpu = await this.cpuUsageNs();
    if (cpu !== undefined) out.cpuUsageNs = cpu;
    const pids = controllerDir(this.support, this.name, 'pids');
    if (pids !== undefined) {
      const events = await readOptionalControl(posix.join(pids, 'pids.events'));
      const hits = events === undefined ? undefined : flatKeyedValue(events, 'max');
      if (hits !== undefined) out.pidsMaxHits = hits;
      const current = await readOptionalControl(posix.join(pids, 'pids.current'));
      if (current !== undefined) out.pidsCurrent = parseCount(current);
    }
    return out;
  }

  /**
   * OOM kills in the group so far (undefined without the memory controller or once the group is
   * gone). Synchronous on purpose: a warm kernel cell reads it at its start and end, and the
   * thread pool's round trips would cost it about a millisecond. The file stays open and is
   * read at offset 0 (a cgroup file is generated afresh by each read from its start): one
   * syscall instead of readFileSync's five. destroy() closes it.
   */
  oomKills(): number | undefined {
    try {
      if (this.oomFd === null) {
        const mem = controllerDir(this.support, this.name, 'memory');
        if (mem === undefined) return undefined;
        this.oomFd = openSync(posix.join(mem, this.support.version === 'v2' ? 'memory.events' : 'memory.oom_control'), 'r');
      }
      const n = readSync(this.oomFd, oomBuffer, 0, oomBuffer.length, 0);
      return flatKeyedValue(oomBuffer.toString('latin1', 0, n), 'oom_kill');
    } catch {
      this.closeOomFile();
      return undefined;
    }
  }

  private closeOomFile(): void {
    if (this.oomFd === null) return;
    try {
      closeSync(this.oomFd);
    } catch {
      // Already closed: nothing holds it.
    }
    this.oomFd = null;
  }

  /**
   * CPU time used by all tasks of the group so far, ns — poll it to enforce a CPU-time budget
   * across forks (RLIMIT_CPU is per process). Undefined when the host has no CPU accounting.
   */
  async cpuUsageNs(): Promise<number | undefined> {
    const dir = controllerDir(this.support, this.name, 'cpuacct');
    if (dir === undefined) return undefined;
    if (this.support.version === 'v2') {
      const usec = flatKeyedValue(await readControl(posix.join(dir, 'cpu.stat')), 'usage_usec');
      return usec === undefined ? undefined : usec * 1000;
    }
    return parseCount(await readControl(posix.join(dir, 'cpuacct.usage')));
  }

  /**
   * SIGKILLs every process in the group until it is empty, within `timeoutMs`. v2 with
   * `cgroup.kill` (Linux ≥ 5.14) kills the whole group atomically; otherwise (v1) it loops
   * SIGKILL over cgroup.procs, since a fork bomb keeps adding pids between rounds. Never
   * signals this process or pid 1.
   */
  async killAll(options: KillAllOptions = {}): Promise<KillAllResult> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const intervalMs = options.intervalMs ?? 20;
    const deadline = Date.now() + timeoutMs;
    let atomic = false;
    if (this.support.version === 'v2') {
      const killFile = posix.join(this.dirs[0] as string, 'cgroup.kill');
      if (await exists(killFile)) {
        await writeControl(killFile, '1');
        atomic = true;
      }
    }
    let rounds = 0;
    for (;;) {
      const pids = await this.pids();
      rounds++;
      if (pids.length === 0) return { empty: true, rounds, remaining: [] };
      if (Date.now() >= deadline) return { empty: false, rounds, remaining: pids };
      if (!atomic) for (const pid of pids) signalKill(pid);
      await sleep(intervalMs);
    }
  }

  /**
   * Kills whatever is left (killAll), then removes the group's directories, retrying while
   * the kernel still reports EBUSY. Idempotent; throws a CgroupError if a directory stays.
   */
  async destroy(options: DestroyOptions = {}): Promise<void> {
    const attempts = options.rmdirAttempts ?? 50;
    const intervalMs = options.intervalMs ?? 20;
    this.closeOomFile();
    const killed = await this.killAll(options);
    let firstError: CgroupError | undefined;
    for (const dir of this.dirs) {
      for (let i = 1; ; i++) {
        try {
          await removeGroupDir(dir);
          break;
        } catch (err) {
          const busy = err instanceof CgroupError && err.code === 'EBUSY';
          if (busy && i < attempts) {
            await sleep(intervalMs);
            continue;
          }
          const e = err instanceof CgroupError ? err : new CgroupError('rmdir', dir, errnoOf(err), String(err));
          if (busy && !killed.empty) e.message += ` (processes still in the group: ${killed.remaining.slice(0, 10).join(' ')})`;
          firstError ??= e;
          break;
        }
      }
    }
    if (firstError) throw firstError;
  }
}

/** Shared by every group's oomKills() (synchronous: one read at a time); the files are ~100 bytes. */
const oomBuffer = Buffer.alloc(1024);

/** Creates a per-execution group; see ExecutionCgroup.create. */
export function createExecutionCgroup(support: ActiveCgroupSupport, name: string, limits: CgroupLimits): Promise<ExecutionCgroup> {
  return ExecutionCgroup.create(support, name, limits);
}

function signalKill(pid: number): void {
  if (pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // ESRCH: exited since the read.
  }
}
