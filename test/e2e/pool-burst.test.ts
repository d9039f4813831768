/**
 * The session pool (session-pool.ts) under a burst of new sessions: shells made and taken while
 * sessions keep coming get no pre-started kernel (it would only be stopped by the session's
 * first run); once the burst is over and the pool is full, its shells get their kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { postJSON } from './helpers/client.js';
import { hostProcesses, waitFor } from './helpers/host.js';
import { startServer } from './helpers/server.js';

const UID_COUNT = 64;
const POOL_SIZE = 3;
const KERNEL = 'python_kernel.py';
const WAITING = '/usr/bin/bwrap --args 3 -- /usr/bin/perl /run/sluice/exec.pl /usr/bin/python3 -u /run/sluice/main.py';

test('shells made and taken during a burst of new sessions get no kernel; a pool at rest gets one per shell', async () => {
  const uidBase = 7_500_000 + randomInt(0, 40_000) * UID_COUNT;
  const inRange = (uid: number): boolean => uid >= uidBase && uid < uidBase + UID_COUNT;
  const server = await startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: String(UID_COUNT), SLUICE_POOL_SIZE: String(POOL_SIZE) });
  try {
    /** uids of the pooled shells (a process sandbox waiting, no session's workspace) that have a kernel running. */
    const restingPool = async (sessions: Set<number>): Promise<Set<number> | undefined> => {
      const procs = (await hostProcesses()).filter((p) => inRange(p.uid) && !sessions.has(p.uid));
      const waiting = new Set(procs.filter((p) => p.args === WAITING).map((p) => p.uid));
      const kernels = new Set(procs.filter((p) => p.args.startsWith('/usr/bin/python3') && p.args.includes(KERNEL) && waiting.has(p.uid)).map((p) => p.uid));
      return kernels.size === POOL_SIZE ? kernels : undefined;
    };
    /** Host uids of the sessions' workspaces, and of those adopted from the pool (links into pool/). */
    const workspaces = join(server.dataDir, 'workspaces');
    const sessionUIDs = async (): Promise<{ all: Set<number>; adopted: Set<number> }> => {
      const all = new Set<number>();
      const adopted = new Set<number>();
      for (const dir of await readdir(workspaces)) {
        const uid = (await stat(join(workspaces, dir, 'ws')).catch(() => null))?.uid;
        if (uid === undefined) continue;
        all.add(uid);
        if ((await lstat(join(workspaces, dir))).isSymbolicLink()) adopted.add(uid);
      }
      return { all, adopted };
    };
    // The first session starts the pool; at rest it fills up and its shells get their kernels.
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'first' })).status, 201);
    const before = await waitFor(`${POOL_SIZE} pooled shells with their kernels`, 120_000, async () => restingPool((await sessionUIDs()).all));
    // A burst: new sessions back to back, until two of them adopted shells made during it.
    let n = 0;
    await waitFor('two shells made and taken during the burst', 120_000, async () => {
      const res = await postJSON(`${server.url}/api/sessions`, { id: `burst-${n++}` });
      assert.equal(res.status, 201, await res.text());
      const { adopted } = await sessionUIDs();
      return [...adopted].filter((uid) => !before.has(uid)).length >= 2 ? true : undefined;
    });
    // At rest again, the pool fills up and gets its kernels: by then a kernel started for a
    // shell of the burst would be up too.
    const sessions = await sessionUIDs();
    await waitFor(`${POOL_SIZE} pooled shells with their kernels after the burst`, 120_000, async () => restingPool(sessions.all));
    const burstShells = [...sessions.adopted].filter((uid) => !before.has(uid));
    const kernelUIDs = new Set((await hostProcesses()).filter((p) => p.args.includes(KERNEL)).map((p) => p.uid));
    assert.deepEqual(
      burstShells.filter((uid) => kernelUIDs.has(uid)),
      [],
      `no kernel pre-started for a shell made and taken during the burst (${burstShells.length} such shells in ${n} sessions)`,
    );
  } finally {
    await server.stop();
  }
});
