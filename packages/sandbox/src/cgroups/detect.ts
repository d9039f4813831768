/**
 * Finds out which cgroups this host offers and prepares our parent group (`sluice` by default):
 *
 * - v2 when the unified hierarchy carries at least as many of memory/pids/cpu as v1 does;
 *   v1 otherwise (a "hybrid" host whose cgroup2 mount has only hugetlb, like ours, is v1);
 *   none when neither can be used, with the reason for each.
 * - The parent goes under the server's own cgroup when that cgroup (or an ancestor) has a
 *   limit, so the limit keeps covering every sandbox; otherwise at the hierarchy root.
 * - v2: our controllers are enabled in `cgroup.subtree_control` from the mount root down to
 *   the parent. The "no internal processes" rule forbids that in a non-root group that holds
 *   processes (EBUSY); then the server's processes are first moved into a leaf
 *   `<parent>-server` next to the parent (what systemd asks of delegated services).
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { CgroupError, errnoOf } from './cgroup-error.js';
import { parseCgroupMounts, type CgroupMount } from './cgroup-mounts.js';
import type { CgroupController, CgroupSupport, CgroupSupportV1, CgroupSupportV2, MissingController, V1Hierarchy } from './cgroup-support.js';
import { exists, makeGroupDir, readOptionalControl, writeControl } from './control-files.js';
import { parseCPUMax, parseLimitValue, parsePIDList } from './flat-keyed.js';
import { validateGroupName } from './group-paths.js';
import { parseProcCgroup, v1PathOf, type ProcCgroup } from './proc-cgroup.js';

/** How detectCgroups() places and names our parent group. */
export interface DetectCgroupsOptions {
  /** Name of our parent group; per-execution groups are its children. Default `sluice`. */
  parentName?: string;
  /**
   * `auto` (default): under the server's own cgroup if it or an ancestor is limited, else at
   * the hierarchy root; `own`: always under the server's own cgroup; `root`: always at the root.
   */
  placement?: 'auto' | 'own' | 'root';
  /** v2 only: may move the server's processes into a leaf group to satisfy "no internal processes". Default true. */
  moveServerToLeaf?: boolean;
}

/** The default parent group name. */
export const DEFAULT_CGROUP_PARENT = 'sluice';

/** Controllers that limit something; a host with none of them has no usable cgroups. */
const LIMITING: readonly CgroupController[] = ['memory', 'pids', 'cpu'];
const V1_WANTED: readonly CgroupController[] = ['memory', 'pids', 'cpu', 'cpuacct'];

/**
 * Detects cgroup v2 / v1 / none from /proc/self/mounts and /proc/self/cgroup and creates our
 * parent group. Never throws for host conditions (those give `none` with a reason); throws a
 * CgroupError only for an invalid `parentName`.
 */
export async function detectCgroups(options: DetectCgroupsOptions = {}): Promise<CgroupSupport> {
  validateGroupName(options.parentName ?? DEFAULT_CGROUP_PARENT, 'parentName');
  let mountsText: string;
  let cgroupText: string;
  try {
    [mountsText, cgroupText] = await Promise.all([readFile('/proc/self/mounts', 'utf8'), readFile('/proc/self/cgroup', 'utf8')]);
  } catch (err) {
    return { version: 'none', reason: `cannot read /proc/self/mounts or /proc/self/cgroup: ${errnoOf(err)} (is /proc mounted?)` };
  }
  return prepareCgroupSupport(parseCgroupMounts(mountsText), parseProcCgroup(cgroupText), options);
}

/** detectCgroups() on already-parsed mounts and membership (the mount points may be anywhere, e.g. a test tree). */
export async function prepareCgroupSupport(mounts: CgroupMount[], self: ProcCgroup, options: DetectCgroupsOptions = {}): Promise<CgroupSupport> {
  const parentName = options.parentName ?? DEFAULT_CGROUP_PARENT;
  validateGroupName(parentName, 'parentName');

  const v2Mount = mounts.find((m) => m.version === 'v2');
  let v2Available: CgroupController[] = [];
  let v2Why: string;
  if (!v2Mount) v2Why = 'no cgroup2 filesystem is mounted';
  else if (v2Mount.readOnly) v2Why = `${v2Mount.mountPoint} is mounted read-only`;
  else {
    const text = await readOptionalControl(posix.join(v2Mount.mountPoint, 'cgroup.controllers')).catch(() => undefined);
    const listed = text?.trim().split(/\s+/) ?? [];
    v2Available = LIMITING.filter((c) => listed.includes(c));
    v2Why = v2Available.length
      ? ''
      : `${v2Mount.mountPoint}/cgroup.controllers has none of memory, pids, cpu (${text === undefined ? 'unreadable' : `it lists: ${text.trim() || 'nothing'}`}; they are bound to v1 hierarchies or disabled)`;
  }
  const v1Count = LIMITING.filter((c) => mounts.some((m) => m.version === 'v1' && !m.readOnly && m.controllers.includes(c))).length;

  if (v2Mount && v2Available.length > 0 && v2Available.length >= v1Count) {
    const v2 = await prepareV2(v2Mount, self, parentName, v2Available, options);
    if (v2.version !== 'none') return v2;
    v2Why = v2.reason;
  }
  const v1Result = await prepareV1(mounts, self, parentName, options);
  if (v1Result.version !== 'none') return v1Result;
  return { version: 'none', reason: `cgroup v2: ${v2Why}; cgroup v1: ${v1Result.reason}${rootHint()}` };
}

function rootHint(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return uid === 0 ? '' : ` (the server runs as uid ${uid}, not root: run it as root or delegate a cgroup subtree to its user)`;
}

/** The directories from `mountPoint` down to `mountPoint + path`, root first. */
function chainDown(mountPoint: string, path: string): string[] {
  const dirs = [mountPoint];
  let cur = mountPoint;
  for (const part of path.split('/').filter(Boolean)) {
    cur = posix.join(cur, part);
    dirs.push(cur);
  }
  return dirs;
}

/** The server's own group under `mountPoint`, or the mount root when that path is not visible there. */
async function ownGroup(mountPoint: string, path: string | undefined, notes: string[]): Promise<string> {
  if (path === undefined || path === '/') return '/';
  if (await exists(posix.join(mountPoint, path))) return path;
  // The mount shows a subtree (a container without a cgroup namespace): its root is our group.
  notes.push(`the server's cgroup ${path} is not visible under ${mountPoint}; treating the mount root as its cgroup`);
  return '/';
}

async function placeParent(
  mountPoint: string,
  own: string,
  options: DetectCgroupsOptions,
  isLimited: (dir: string) => Promise<boolean>,
): Promise<{ base: string; nested: boolean }> {
  const placement = options.placement ?? 'auto';
  let nested = false;
  if (own !== '/' && placement !== 'root') {
    if (placement === 'own') nested = true;
    else {
      // The limit may sit on any ancestor below the root (e.g. a systemd slice).
      for (const dir of chainDown(mountPoint, own).slice(1)) if (await isLimited(dir)) nested = true;
    }
  }
  return { base: nested ? posix.join(mountPoint, own) : mountPoint, nested };
}

async function limitIsSet(file: string, parse: (text: string) => number | null): Promise<boolean> {
  const text = await readOptionalControl(file).catch(() => undefined);
  if (text === undefined) return false;
  try {
    return parse(text) !== null;
  } catch {
    return false;
  }
}

async function prepareV2(
  mount: CgroupMount,
  self: ProcCgroup,
  parentName: string,
  wanted: CgroupController[],
  options: DetectCgroupsOptions,
): Promise<CgroupSupportV2 | { version: 'none'; reason: string }> {
  const mp = mount.mountPoint;
  const notes: string[] = [];
  const own = await ownGroup(mp, self.unified, notes);
  const { base, nested } = await placeParent(mp, own, options, async (dir) =>
    (await limitIsSet(posix.join(dir, 'memory.max'), parseLimitValue)) ||
    (await limitIsSet(posix.join(dir, 'pids.max'), parseLimitValue)) ||
    (await limitIsSet(posix.join(dir, 'cpu.max'), parseCPUMax)),
  );
  const parentDir = posix.join(base, parentName);
  const failures = new Map<CgroupController, string>();
  const ownDir = posix.join(mp, own);
  const leafName = `${parentName}-server`;

  // base is either the mount root or our own group; parentDir is last.
  const chain = [...chainDown(mp, nested ? own : '/'), parentDir];
  for (const dir of chain) {
    if (dir === parentDir) {
      try {
        await makeGroupDir(parentDir);
      } catch (err) {
        return { version: 'none', reason: err instanceof Error ? err.message : String(err) };
      }
    }
    const allowMove = options.moveServerToLeaf !== false && dir === ownDir && dir !== parentDir;
    await enableControllers(dir, wanted, failures, allowMove ? posix.join(dir, leafName) : undefined, notes);
  }

  const enabled = (await readOptionalControl(posix.join(parentDir, 'cgroup.subtree_control')).catch(() => undefined))?.trim().split(/\s+/) ?? [];
  const controllers: CgroupController[] = [...LIMITING.filter((c) => enabled.includes(c)), 'cpuacct'];
  const missing: MissingController[] = LIMITING.filter((c) => !controllers.includes(c)).map((c) => ({
    controller: c,
    reason: failures.get(c) ?? (wanted.includes(c) ? `not enabled in ${parentDir}/cgroup.subtree_control` : `not in ${mp}/cgroup.controllers`),
  }));
  if (!controllers.some((c) => LIMITING.includes(c))) {
    return { version: 'none', reason: `${parentDir}: none of memory, pids, cpu could be enabled (${missing.map((m) => `${m.controller}: ${m.reason}`).join('; ')})` };
  }
  return { version: 'v2', parentName, mountPoint: mp, parentDir, nested, controllers, missing, notes };
}

/** Enables `wanted` in dir/cgroup.subtree_control where offered; records per-controller failures. */
async function enableControllers(
  dir: string,
  wanted: CgroupController[],
  failures: Map<CgroupController, string>,
  leafDir: string | undefined,
  notes: string[],
): Promise<void> {
  const offered = (await readOptionalControl(posix.join(dir, 'cgroup.controllers')).catch(() => undefined))?.trim().split(/\s+/) ?? [];
  const enabled = (await readOptionalControl(posix.join(dir, 'cgroup.subtree_control')).catch(() => undefined))?.trim().split(/\s+/) ?? [];
  let moved = false;
  // The first failure along the path is the informative one; later dirs only echo it.
  const fail = (c: CgroupController, why: string): void => {
    if (!failures.has(c)) failures.set(c, why);
  };
  for (const c of wanted) {
    if (enabled.includes(c)) continue;
    if (!offered.includes(c)) {
      fail(c, `not offered in ${dir}/cgroup.controllers`);
      continue;
    }
    try {
      await writeControl(posix.join(dir, 'cgroup.subtree_control'), `+${c}`);
    } catch (err) {
      const code = err instanceof CgroupError ? err.code : errnoOf(err);
      if (code !== 'EBUSY' || leafDir === undefined || moved) {
        fail(c, err instanceof Error ? err.message : String(err));
        continue;
      }
      // "No internal processes": our own group holds processes (us); move them into a leaf.
      try {
        const count = await moveProcesses(dir, leafDir);
        moved = true;
        notes.push(`moved ${count} process(es) of ${dir} into ${leafDir} so that ${dir} may delegate controllers`);
        await writeControl(posix.join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch (err2) {
        fail(c, err2 instanceof Error ? err2.message : String(err2));
      }
    }
  }
}

async function moveProcesses(fromDir: string, leafDir: string): Promise<number> {
  await makeGroupDir(leafDir);
  const pids = parsePIDList((await readOptionalControl(posix.join(fromDir, 'cgroup.procs'))) ?? '');
  let count = 0;
  for (const pid of pids) {
    try {
      await writeControl(posix.join(leafDir, 'cgroup.procs'), String(pid));
      count++;
    } catch (err) {
      // Gone meanwhile: nothing to move.
      if (err instanceof CgroupError && err.code === 'ESRCH') continue;
      throw err;
    }
  }
  return count;
}

async function prepareV1(
  mounts: CgroupMount[],
  self: ProcCgroup,
  parentName: string,
  options: DetectCgroupsOptions,
): Promise<CgroupSupportV1 | { version: 'none'; reason: string }> {
  const notes: string[] = [];
  const missing: MissingController[] = [];
  const byMount = new Map<string, { mount: CgroupMount; controllers: CgroupController[] }>();
  for (const c of V1_WANTED) {
    const m = mounts.find((x) => x.version === 'v1' && !x.readOnly && x.controllers.includes(c));
    if (!m) {
      const ro = mounts.find((x) => x.version === 'v1' && x.controllers.includes(c));
      missing.push({ controller: c, reason: ro ? `${ro.mountPoint} is mounted read-only` : 'no v1 hierarchy carries it' });
      continue;
    }
    const entry = byMount.get(m.mountPoint) ?? { mount: m, controllers: [] };
    entry.controllers.push(c);
    byMount.set(m.mountPoint, entry);
  }

  const hierarchies: V1Hierarchy[] = [];
  for (const { mount, controllers } of byMount.values()) {
    const mp = mount.mountPoint;
    const first = controllers[0] as CgroupController;
    const own = await ownGroup(mp, v1PathOf(self, first), notes);
    const { base, nested } = await placeParent(mp, own, options, async (dir) => {
      for (const c of controllers) {
        if (c === 'memory' && (await limitIsSet(posix.join(dir, 'memory.limit_in_bytes'), parseLimitValue))) return true;
        if (c === 'pids' && (await limitIsSet(posix.join(dir, 'pids.max'), parseLimitValue))) return true;
        if (c === 'cpu' && (await limitIsSet(posix.join(dir, 'cpu.cfs_quota_us'), parseLimitValue))) return true;
      }
      return false;
    });
    const parentDir = posix.join(base, parentName);
    try {
      await makeGroupDir(parentDir);
    } catch (err) {
      for (const c of controllers) missing.push({ controller: c, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    hierarchies.push({ controllers, mountPoint: mp, parentDir, nested });
  }

  const have = V1_WANTED.filter((c) => hierarchies.some((h) => h.controllers.includes(c)));
  if (!have.some((c) => LIMITING.includes(c))) {
    return { version: 'none', reason: missing.length ? missing.map((m) => `${m.controller}: ${m.reason}`).join('; ') : 'no v1 hierarchy is mounted' };
  }
  missing.sort((a, b) => V1_WANTED.indexOf(a.controller) - V1_WANTED.indexOf(b.controller));
  return { version: 'v1', parentName, hierarchies, controllers: have, missing, notes };
}
