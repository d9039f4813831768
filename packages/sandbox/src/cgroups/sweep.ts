/**
 * Crash safety: at server start, every group left under our parent group by an earlier run
 * (a crashed or SIGKILLed server) is emptied (SIGKILL to its tasks) and removed.
 */
import { CgroupError } from './cgroup-error.js';
import type { CgroupSupport } from './cgroup-support.js';
import { listChildGroups } from './control-files.js';
import { ExecutionCgroup, type DestroyOptions } from './execution-cgroup.js';
import { parentDirs } from './group-paths.js';

/** What sweepStaleCgroups() did. */
export interface SweepResult {
  /** Names of the groups removed. */
  removed: string[];
  /** Processes SIGKILLed in them (pids seen at the first round). */
  killedPids: number[];
  /** Groups that could not be removed, with why. */
  failed: { name: string; error: CgroupError }[];
}

/**
 * Kills the tasks of and removes every group under our parent group (in every hierarchy).
 * Run it once at start, before any execution: it cannot tell a live execution of this server
 * from a leftover, and neither may another server share the parent group name.
 */
export async function sweepStaleCgroups(support: CgroupSupport, options: DestroyOptions = {}): Promise<SweepResult> {
  const result: SweepResult = { removed: [], killedPids: [], failed: [] };
  if (support.version === 'none') return result;
  const names = new Set<string>();
  for (const dir of parentDirs(support)) for (const name of await listChildGroups(dir)) names.add(name);
  for (const name of [...names].sort()) {
    let group: ExecutionCgroup;
    try {
      group = ExecutionCgroup.attach(support, name);
    } catch (err) {
      // Not a name we would ever create: someone else's; leave it alone.
      if (err instanceof CgroupError) result.failed.push({ name, error: err });
      continue;
    }
    try {
      result.killedPids.push(...(await group.pids()));
      await group.destroy(options);
      result.removed.push(name);
    } catch (err) {
      result.failed.push({ name, error: err instanceof CgroupError ? err : new CgroupError('rmdir', group.dirs[0] ?? '', 'UNKNOWN', String(err)) });
    }
  }
  return result;
}
