/**
 * The host's cgroup support, detected once per server process. The first detection also
 * sweeps groups a previous run of the server left behind (it crashed mid-execution), killing
 * whatever still runs in them.
 */
import { rmdir } from 'node:fs/promises';
import type { CgroupSupport } from './cgroup-support.js';
import { detectCgroups } from './detect.js';
import { sweepStaleCgroups } from './sweep.js';

const detected = new Map<string, Promise<CgroupSupport>>();

/**
 * Detects (once per parent group) and returns the host's cgroup support; `version: 'none'`
 * carries the reason. Each server names its parent group after its data directory, so two
 * servers on one host never sweep each other's groups, and a restart sweeps its own.
 */
export function cgroupHost(parentName: string): Promise<CgroupSupport> {
  let p = detected.get(parentName);
  if (p) return p;
  p = (async () => {
    const support = await detectCgroups({ parentName }).catch(
      (err: Error): CgroupSupport => ({ version: 'none', reason: `cgroup detection failed: ${err.message}` }),
    );
    if (support.version !== 'none') await sweepStaleCgroups(support).catch(() => undefined);
    return support;
  })();
  detected.set(parentName, p);
  return p;
}

/** On shutdown: removes what is left under this server's parent group, then the parent itself. */
export async function releaseCgroupHost(parentName: string): Promise<void> {
  const p = detected.get(parentName);
  if (!p) return;
  detected.delete(parentName);
  const support = await p;
  if (support.version === 'none') return;
  await sweepStaleCgroups(support).catch(() => undefined);
  const dirs = support.version === 'v2' ? [support.parentDir] : support.hierarchies.map((h) => h.parentDir);
  await Promise.all(dirs.map((d) => rmdir(d).catch(() => undefined)));
}
