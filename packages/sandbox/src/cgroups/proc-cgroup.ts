/**
 * Parser for /proc/<pid>/cgroup (cgroups(7)): one `hierarchy-ID:controller-list:cgroup-path`
 * line per hierarchy; the v2 (unified) line is `0::/path`, v1 lines name their controllers
 * (`4:memory:/a/b`, `2:cpu,cpuacct:/`) and named hierarchies carry `name=…`.
 */

/** One line of /proc/<pid>/cgroup. */
export interface ProcCgroupEntry {
  hierarchyID: number;
  /** Controllers bound to the hierarchy (`name=systemd` entries are kept as written); [] for v2. */
  controllers: string[];
  /** The process's cgroup, absolute within the hierarchy as seen from our cgroup namespace. */
  path: string;
}

/** Membership of one process in every hierarchy. */
export interface ProcCgroup {
  /** The cgroup v2 path (`0::/path`), if the unified hierarchy is present. */
  unified: string | undefined;
  /** The v1 entries, in file order. */
  v1: ProcCgroupEntry[];
}

/** Parses /proc/<pid>/cgroup text; malformed lines are skipped. */
export function parseProcCgroup(text: string): ProcCgroup {
  const result: ProcCgroup = { unified: undefined, v1: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    // The path may itself contain ':', so split on the first two only.
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const id = Number(line.slice(0, a));
    const list = line.slice(a + 1, b);
    const path = normalizeCgroupPath(line.slice(b + 1));
    if (!Number.isInteger(id) || id < 0 || path === undefined) continue;
    if (id === 0 && list === '') {
      result.unified = path;
      continue;
    }
    result.v1.push({ hierarchyID: id, controllers: list === '' ? [] : list.split(','), path });
  }
  return result;
}

/** The v1 cgroup path of the hierarchy that carries `controller`, if any. */
export function v1PathOf(cgroup: ProcCgroup, controller: string): string | undefined {
  return cgroup.v1.find((e) => e.controllers.includes(controller))?.path;
}

/**
 * Absolute, `/`-separated, without `.`/`..`, a trailing `/` or the ` (deleted)` suffix the
 * kernel appends for removed groups; undefined if it is not absolute.
 */
export function normalizeCgroupPath(path: string): string | undefined {
  const p = path.replace(/ \(deleted\)$/, '');
  if (!p.startsWith('/')) return undefined;
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) return undefined;
  return '/' + parts.join('/');
}
