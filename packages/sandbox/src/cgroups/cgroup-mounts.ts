/**
 * Parser for /proc/<pid>/mounts (proc(5), fstab(5) fields): finds the cgroup v1 hierarchies
 * (`cgroup` mounts, controllers in the options) and the cgroup v2 mount (`cgroup2`).
 */

/** A mounted cgroup hierarchy. */
export interface CgroupMount {
  /** Where it is mounted (octal escapes such as `\040` decoded). */
  mountPoint: string;
  version: 'v1' | 'v2';
  /** v1: the controllers in the mount options (`name=…` excluded); v2: []. */
  controllers: string[];
  readOnly: boolean;
}

/** Controllers that may appear in a v1 mount's options (cgroups(7)). */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event',
  'net_prio', 'hugetlb', 'pids', 'rdma', 'misc',
]);

/** Every cgroup and cgroup2 mount, in file order; a hierarchy mounted twice is listed twice. */
export function parseCgroupMounts(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4) continue;
    const [, rawPoint, type, rawOptions] = fields as [string, string, string, string];
    if (type !== 'cgroup' && type !== 'cgroup2') continue;
    const options = rawOptions.split(',');
    mounts.push({
      mountPoint: unescapeMountField(rawPoint),
      version: type === 'cgroup2' ? 'v2' : 'v1',
      controllers: type === 'cgroup2' ? [] : options.filter((o) => V1_CONTROLLERS.has(o)),
      readOnly: options.includes('ro'),
    });
  }
  return mounts;
}

/** Decodes the `\ooo` octal escapes the kernel uses for space, tab, newline and backslash. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
