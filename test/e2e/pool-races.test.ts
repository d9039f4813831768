/**
 * The session pool (session-pool.ts) under races: a session that adopts a shell whose sandbox
 * and kernel are still starting runs normally; shells being filled never make a real session
 * wait or fail; a pool with no room stays idle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { postJSON, runStream } from './helpers/client.js';
import { waitFor } from './helpers/host.js';
import { startServer, type TestServer } from './helpers/server.js';

const UID_COUNT = 16;

async function poolServer(env: Record<string, string>): Promise<TestServer> {
  const uidBase = 7_500_000 + randomInt(0, 40_000) * UID_COUNT;
  return startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: String(UID_COUNT), ...env });
}

/** Cgroup directories of pre-started sandboxes (POOL_CGROUP_PREFIX, then `p`) under the server's parent group. */
async function poolGroups(server: TestServer): Promise<string[]> {
  const parent = `sluice-${createHash('sha256').update(server.dataDir).digest('hex').slice(0, 12)}`;
  for (const dir of [join('/sys/fs/cgroup', parent), join('/sys/fs/cgroup/pids', parent), join('/sys/fs/cgroup/memory', parent)]) {
    const names = await readdir(dir).catch(() => null);
    if (names?.some((n) => n.startsWith('pool-'))) return names.filter((n) => n.startsWith('pool-p')).map((n) => join(dir, n));
  }
  return [];
}

/** Polls as fast as the event loop allows: the shell must be caught right after it is made. */
async function soon<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test('a session that adopts a shell still starting (sandbox and kernel) runs its first execution normally', async () => {
  const server = await poolServer({ SLUICE_POOL_SIZE: '1' });
  try {
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'first' })).status, 201);
    const failures: string[] = [];
    for (let i = 0; i < 16; i++) {
      // A shell is offered right after its sandbox's launch, which follows its cgroup's creation
      // (the previous run's group, taken from a shell, is gone with its session).
      // Its first process in the group: launched, so the shell is in the pool or about to be.
      await soon('a shell\'s sandbox being launched', async () => {
        for (const dir of await poolGroups(server)) {
          const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
          if (procs.trim() !== '') return true;
        }
        return undefined;
      });
      const mode = i % 4 < 2 ? 'process' : 'kernel';
      const r = await runStream(server.url, `s${i}`, { language: 'python', mode, code: 'print(6 * 7)' });
      if (r.stdout !== '42\n' || r.done.exit_code !== 0 || r.done.reason !== 'exited') {
        failures.push(`#${i} ${mode}: ${JSON.stringify(r.done)} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr.slice(0, 300))}`);
      }
      assert.equal((await fetch(`${server.url}/api/sessions/s${i}`, { method: 'DELETE' })).status, 204);
      // The session's workspace (a link into pool/) is gone with it.
      await waitFor('the deleted session\'s workspace to go', 15_000, async () => ((await readdir(join(server.dataDir, 'pool'))).length <= 1 ? true : undefined));
    }
    assert.deepEqual(failures, [], 'every first run exits 0 with its output');
  } finally {
    await server.stop();
  }
});

test('a shell being filled gives its uid to a real session: no 429 while only the pool holds uids', async () => {
  // 3 uids: the first session's, and two for real sessions; a shell fills whenever two are free.
  const server = await poolServer({ SLUICE_POOL_SIZE: '1', SLUICE_UID_COUNT: '3' });
  try {
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'first' })).status, 201);
    let pair: string[] = [];
    for (let i = 0; i < 8; i++) {
      // Deleting the pair frees two uids: a shell's fill starts at once and holds one of them.
      for (const id of pair) assert.equal((await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' })).status, 204);
      pair = [`a${i}`, `b${i}`];
      // Other settings than the defaults: they never adopt a shell, each needs a uid of its own.
      const made = await Promise.all(pair.map(async (id) => {
        const res = await postJSON(`${server.url}/api/sessions`, { id, env: { X: id } });
        return `${id} ${res.status} ${await res.text()}`;
      }));
      for (const m of made) assert.match(m, /^\S+ 201 /, m);
    }
  } finally {
    await server.stop();
  }
});

/** Times the server's main thread (its event loop) went to sleep: each timer or I/O wake-up adds one. */
async function wakeUps(pid: number): Promise<number> {
  const m = /^voluntary_ctxt_switches:\s*(\d+)$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

test('a pool without room for a shell waits idle (no refill loop) and fills once room appears', async () => {
  // 3 uids: the first session's, one shell, one kept free for a real session: no room for a second shell.
  const server = await poolServer({ SLUICE_POOL_SIZE: '2', SLUICE_UID_COUNT: '3' });
  try {
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'first' })).status, 201);
    const pid = server.proc.pid;
    assert.ok(pid !== undefined);
    // Once the shell's sandbox and kernel are up, the event loop mostly sleeps (about 100 wake-ups
    // a second measured idle), where a refill loop woke it about 800 times a second.
    // Polled: the shell's start takes a while on a busy machine.
    let last = '';
    await waitFor('an idle server with no room for a shell', 90_000, async () => {
      const w0 = await wakeUps(pid);
      const t0 = performance.now();
      await waitFor('2 s to pass', 5_000, async () => (performance.now() - t0 >= 2000 ? true : undefined));
      const n = (await wakeUps(pid)) - w0;
      last = `${n} wake-ups in ${Math.round(performance.now() - t0)} ms`;
      return n < 600 ? true : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}; last: ${last}`);
    });
    // Room appears (the first session goes): the pool fills its second shell.
    assert.equal((await fetch(`${server.url}/api/sessions/first`, { method: 'DELETE' })).status, 204);
    await waitFor('a second shell', 60_000, async () => ((await poolGroups(server)).length >= 2 ? true : undefined));
  } finally {
    await server.stop();
  }
});
