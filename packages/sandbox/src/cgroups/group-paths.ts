/**
 * Where a per-execution group lives: one directory under the parent group in v2, one per
 * hierarchy in v1; `cgroup.procs` in each is what a process writes its pid into to join.
 */
import { posix } from 'node:path';
import { CgroupError } from './cgroup-error.js';
import type { ActiveCgroupSupport, CgroupController } from './cgroup-support.js';

/** A cgroup name we create: one path component, letters, digits, `_.-`, at most 128 characters. */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Throws a CgroupError unless `name` is a safe single cgroup directory name. */
export function validateGroupName(name: string, option = 'name'): void {
  if (!NAME_RE.test(name)) {
    throw new CgroupError(
      'config',
      '',
      'EINVAL',
      `cgroup: ${option} must be 1–128 characters of letters, digits, "_", "." or "-", not starting with "." or "-"; got ${JSON.stringify(name)}`,
    );
  }
}

/** The directories of group `name`, one per hierarchy (v2: exactly one). */
export function groupDirs(support: ActiveCgroupSupport, name: string): string[] {
  validateGroupName(name);
  if (support.version === 'v2') return [posix.join(support.parentDir, name)];
  return support.hierarchies.map((h) => posix.join(h.parentDir, name));
}

/** The directory of group `name` that carries `controller`, if this host has it. */
export function controllerDir(support: ActiveCgroupSupport, name: string, controller: CgroupController): string | undefined {
  validateGroupName(name);
  if (!support.controllers.includes(controller)) return undefined;
  if (support.version === 'v2') return posix.join(support.parentDir, name);
  const h = support.hierarchies.find((x) => x.controllers.includes(controller));
  return h && posix.join(h.parentDir, name);
}

/** The `cgroup.procs` files a process must write its own pid into to join group `name` everywhere. */
export function procsFilesOf(support: ActiveCgroupSupport, name: string): string[] {
  return groupDirs(support, name).map((d) => posix.join(d, 'cgroup.procs'));
}

/** The parent group's directories (one per hierarchy in v1). */
export function parentDirs(support: ActiveCgroupSupport): string[] {
  return support.version === 'v2' ? [support.parentDir] : support.hierarchies.map((h) => h.parentDir);
}
