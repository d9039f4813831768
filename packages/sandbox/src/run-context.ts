/**
 * The launch settings every sandbox of a session shares, a process run's or a kernel's: what a
 * session and its server give each execution (RunContext), the base of its launch spec
 * (sandboxBase) and the environment a sandboxed program starts from (baseEnv).
 */
import { RUNTIME_PATH } from './bwrap-options.js';
import type { ExecutionCgroup } from './cgroups/execution-cgroup.js';
import type { LaunchSpec, RLimits } from './launch.js';
import type { Runtime } from './runtimes.js';

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

/**
 * What every sandbox of a session shares: the session's files, uid, network, limits and the
 * execution's cgroup; the environment starts from baseEnv() and the runtime's variables, then
 * the session's.
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
    ...(runtime.binds ? { extraBinds: runtime.binds } : {}),
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
