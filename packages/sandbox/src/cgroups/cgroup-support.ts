/**
 * What this host offers for per-execution cgroups, as found by detectCgroups(): cgroup v2
 * (one unified tree), cgroup v1 (one tree per controller), or none (with the reason).
 */

/** The controllers the module uses. `cpuacct` stands for CPU-time accounting (v2: `cpu.stat`, always present). */
export type CgroupController = 'memory' | 'pids' | 'cpu' | 'cpuacct';

/** Every controller the module knows, in the order it reports them. */
export const CGROUP_CONTROLLERS: readonly CgroupController[] = ['memory', 'pids', 'cpu', 'cpuacct'];

/** A controller this host cannot give us, and why. */
export interface MissingController {
  controller: CgroupController;
  reason: string;
}

/** One mounted v1 hierarchy that carries controllers we use (`cpu` and `cpuacct` may share one). */
export interface V1Hierarchy {
  /** Our controllers bound to this hierarchy. */
  controllers: CgroupController[];
  /** Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`. */
  mountPoint: string;
  /** Our parent group in it; per-execution groups are its children. */
  parentDir: string;
  /** True when `parentDir` sits under the server's own (limited) cgroup rather than at the mount root. */
  nested: boolean;
}

/** cgroup v2: one tree; the parent group has our controllers enabled in `cgroup.subtree_control`. */
export interface CgroupSupportV2 {
  version: 'v2';
  parentName: string;
  mountPoint: string;
  parentDir: string;
  nested: boolean;
  /** Usable controllers (`cpuacct` always: v2's cpu.stat needs no controller). */
  controllers: CgroupController[];
  missing: MissingController[];
  /** Things an operator may want in the log (e.g. the server was moved into a leaf group). */
  notes: string[];
}

/** cgroup v1: a parent group in each hierarchy that carries one of our controllers. */
export interface CgroupSupportV1 {
  version: 'v1';
  parentName: string;
  hierarchies: V1Hierarchy[];
  controllers: CgroupController[];
  missing: MissingController[];
  notes: string[];
}

/** No usable cgroups: limits fall back to rlimits only. */
export interface CgroupSupportNone {
  version: 'none';
  /** Why, per version tried, with what to change. */
  reason: string;
}

/** Result of detectCgroups(). */
export type CgroupSupport = CgroupSupportV2 | CgroupSupportV1 | CgroupSupportNone;

/** A CgroupSupport whose groups can be created. */
export type ActiveCgroupSupport = CgroupSupportV2 | CgroupSupportV1;
