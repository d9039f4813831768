/**
 * The control-file writes that apply a group's limits, in the order they must happen, for v2
 * (memory.max, memory.swap.max, pids.max, cpu.max) and v1 (memory.limit_in_bytes before
 * memory.memsw.limit_in_bytes, which may never be below it; pids.max; cpu.cfs_period_us and
 * cpu.cfs_quota_us). Pure: the caller performs them.
 */
import { posix } from 'node:path';
import { CgroupError } from './cgroup-error.js';
import type { ActiveCgroupSupport, CgroupController } from './cgroup-support.js';
import { controllerDir } from './group-paths.js';

/** Per-execution limits; an omitted one is not limited. */
export interface CgroupLimits {
  /** Memory ceiling in bytes; swap is not allowed on top (v1 memsw = same value, v2 swap.max = 0). */
  memoryBytes?: number;
  /** Tasks (processes and threads) at once. */
  pids?: number;
  /** CPU bandwidth as a fraction of one CPU (0.25 = a quarter, 2 = two CPUs). */
  cpuQuota?: number;
}

/** One write of `value` to `file`; `optional` ones are skipped when the kernel lacks the file. */
export interface ControlWrite {
  file: string;
  value: string;
  optional: boolean;
}

/** The CFS period we use, µs (the kernel default). */
export const CPU_PERIOD_US = 100_000;
/** The smallest quota the kernel accepts, µs. */
const MIN_QUOTA_US = 1_000;
/** Below this a program cannot even start an interpreter; almost certainly a units mistake. */
const MIN_MEMORY_BYTES = 4 * 1024 * 1024;

const LIMIT_CONTROLLER: Record<keyof CgroupLimits, CgroupController> = { memoryBytes: 'memory', pids: 'pids', cpuQuota: 'cpu' };

/** Throws a CgroupError (EINVAL) naming the option, what was expected and what arrived. */
export function validateLimits(limits: CgroupLimits): void {
  const bad = (option: string, expected: string, got: unknown): never => {
    throw new CgroupError('config', '', 'EINVAL', `cgroup limits: ${option} must be ${expected}; got ${String(got)}`);
  };
  const { memoryBytes, pids, cpuQuota } = limits;
  if (memoryBytes !== undefined && !(Number.isSafeInteger(memoryBytes) && memoryBytes >= MIN_MEMORY_BYTES)) {
    bad('memoryBytes', `an integer number of bytes ≥ ${MIN_MEMORY_BYTES} (4 MiB)`, memoryBytes);
  }
  if (pids !== undefined && !(Number.isSafeInteger(pids) && pids >= 1)) bad('pids', 'an integer ≥ 1', pids);
  if (cpuQuota !== undefined && !(Number.isFinite(cpuQuota) && cpuQuota * CPU_PERIOD_US >= MIN_QUOTA_US && cpuQuota <= 1024)) {
    bad('cpuQuota', 'a fraction of one CPU between 0.01 and 1024 (e.g. 0.5)', cpuQuota);
  }
}

/** The limits whose controller this host lacks (they are not enforced). */
export function unenforcedLimits(support: ActiveCgroupSupport, limits: CgroupLimits): (keyof CgroupLimits)[] {
  return (Object.keys(LIMIT_CONTROLLER) as (keyof CgroupLimits)[]).filter(
    (k) => limits[k] !== undefined && !support.controllers.includes(LIMIT_CONTROLLER[k]),
  );
}

/** The writes that apply `limits` to group `name` (validated first). */
export function limitWrites(support: ActiveCgroupSupport, name: string, limits: CgroupLimits): ControlWrite[] {
  validateLimits(limits);
  const writes: ControlWrite[] = [];
  const at = (controller: CgroupController, file: string, value: string | number, optional = false): void => {
    const dir = controllerDir(support, name, controller);
    if (dir !== undefined) writes.push({ file: posix.join(dir, file), value: String(value), optional });
  };
  const v2 = support.version === 'v2';
  if (limits.memoryBytes !== undefined) {
    if (v2) {
      at('memory', 'memory.max', limits.memoryBytes);
      // Absent when swap accounting is off; then there is no swap to charge anyway.
      at('memory', 'memory.swap.max', 0, true);
    } else {
      at('memory', 'memory.limit_in_bytes', limits.memoryBytes);
      // memsw = memory + swap; absent without swap accounting (swapaccount=0).
      at('memory', 'memory.memsw.limit_in_bytes', limits.memoryBytes, true);
    }
  }
  if (limits.pids !== undefined) at('pids', 'pids.max', limits.pids);
  if (limits.cpuQuota !== undefined) {
    const quota = Math.max(MIN_QUOTA_US, Math.round(limits.cpuQuota * CPU_PERIOD_US));
    if (v2) at('cpu', 'cpu.max', `${quota} ${CPU_PERIOD_US}`);
    else {
      at('cpu', 'cpu.cfs_period_us', CPU_PERIOD_US);
      at('cpu', 'cpu.cfs_quota_us', quota);
    }
  }
  return writes;
}
