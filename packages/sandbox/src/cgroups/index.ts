/** Per-execution cgroups (v2 and v1): detection, limits, joining, stats, kill, cleanup. */
export { CgroupError } from './cgroup-error.js';
export type { ProcCgroup, ProcCgroupEntry } from './proc-cgroup.js';
export { parseProcCgroup } from './proc-cgroup.js';
export type { CgroupMount } from './cgroup-mounts.js';
export { parseCgroupMounts } from './cgroup-mounts.js';
export * from './cgroup-host.js';
export * from './cgroup-support.js';
export * from './detect.js';
export * from './execution-cgroup.js';
export * from './cpu-budget.js';
export * from './sweep.js';
export type { CgroupLimits } from './limit-writes.js';
export { validateLimits, CPU_PERIOD_US } from './limit-writes.js';
