/**
 * The session pool (SLUICE_POOL_SIZE, session-pool.ts) end to end: pre-started shells are
 * fresh (nothing of another session: files, processes, variables, kernel state), never shared
 * between tenants, bounded, give way to real sessions under the uid cap, off means none, and a
 * server that stops leaves nothing behind (processes, workspaces, cgroups).
 *
 * Each server gets a uid range of its own, so the pool's sandboxes are found on the host by uid:
 * a pre-started sandbox is two bwrap processes waiting with the Python command on their argv,
 * and no program below them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { outcome, postJSON, readSSE, runStream, type RunOutcome } from './helpers/client.js';
import { hostProcesses, mountsUnder, waitFor, type HostProc } from './helpers/host.js';
import { startServer, type TestServer } from './helpers/server.js';

const UID_COUNT = 16;
const PROGRAM = '/usr/bin/python3 -u /run/sluice/main.py';
const WAITING = `/usr/bin/bwrap --args 3 -- /usr/bin/perl /run/sluice/exec.pl ${PROGRAM}`;
const KERNEL = 'python_kernel.py';

/** A server with a uid range of its own; the pool fills from its first session on, so one is made. */
async function poolServer(env: Record<string, string>, headers: Record<string, string> = {}): Promise<{ server: TestServer; uidBase: number; inRange(p: HostProc): boolean }> {
  const uidBase = 7_500_000 + randomInt(0, 40_000) * UID_COUNT;
  const server = await startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: String(UID_COUNT), ...env });
  const first = await postJSON(`${server.url}/api/sessions`, { id: 'first' }, headers);
  assert.equal(first.status, 201, await first.text());
  return { server, uidBase, inRange: (p) => p.uid >= uidBase && p.uid < uidBase + UID_COUNT };
}

/** uids with a pre-started process sandbox waiting (no program started in it yet). */
async function waitingUIDs(inRange: (p: HostProc) => boolean): Promise<Set<number>> {
  const procs = (await hostProcesses()).filter(inRange);
  const uids = new Set<number>();
  for (const p of procs) if (p.args === WAITING) uids.add(p.uid);
  // A uid whose sandbox runs a program (perl reporter, python) is a session's, not a shell's.
  for (const p of procs) if (p.args === `/usr/bin/perl /run/sluice/exec.pl ${PROGRAM}` || p.args === PROGRAM) uids.delete(p.uid);
  return uids;
}

/** Waits until exactly `n` shells wait with their sandbox and kernel up; returns their uids. */
async function fullPool(inRange: (p: HostProc) => boolean, n: number): Promise<Set<number>> {
  return waitFor(`${n} pre-started shells`, 60_000, async () => {
    const uids = await waitingUIDs(inRange);
    if (uids.size !== n) return undefined;
    const kernels = (await hostProcesses()).filter((p) => inRange(p) && p.args.startsWith('/usr/bin/python3') && p.args.includes(KERNEL) && uids.has(p.uid));
    return new Set(kernels.map((k) => k.uid)).size === n ? uids : undefined;
  });
}

/** Nothing of any session or shell left: no process in the server's uid range, no workspace, pooled or not. */
async function assertNoShellLeft(server: TestServer, inRange: (p: HostProc) => boolean): Promise<void> {
  assert.deepEqual((await hostProcesses()).filter(inRange), [], 'no process in the uid range');
  assert.deepEqual(await readdir(join(server.dataDir, 'workspaces')), [], 'no workspace');
  assert.deepEqual(await readdir(join(server.dataDir, 'pool')), [], 'no pooled workspace');
}

/** The host uid of the session whose workspace holds `file` (the workspace tmpfs is the uid's). */
async function uidOfWorkspaceWith(server: TestServer, file: string): Promise<number> {
  const root = join(server.dataDir, 'workspaces');
  for (const dir of await readdir(root)) {
    const ws = join(root, dir, 'ws');
    if (await stat(join(ws, file)).then(() => true, () => false)) return (await stat(ws)).uid;
  }
  throw new Error(`no workspace holds ${file}`);
}

/** Marks the session's workspace and returns its host uid. */
async function sessionUID(server: TestServer, session: string, headers: Record<string, string> = {}): Promise<number> {
  const mark = `.mark-${randomInt(1e9)}`;
  const r = await runWith(server, session, { code: `open("/workspace/${mark}", "w").close()`, language: 'python', mode: 'process' }, headers);
  assert.equal(r.done.exit_code, 0, r.stderr);
  return uidOfWorkspaceWith(server, mark);
}

async function runWith(server: TestServer, session: string, body: Record<string, unknown>, headers: Record<string, string>): Promise<RunOutcome> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, body, headers);
  assert.equal(res.status, 200);
  return outcome(await readSSE(res));
}

test('a pooled shell is fresh: no file, process, variable or kernel state of the session before it', async () => {
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '2' });
  try {
    const pooled = await fullPool(inRange, 2);
    // The first session: adopts a shell, leaves everything it can behind.
    const dirty = await runStream(server.url, 'dirty', {
      language: 'python',
      mode: 'kernel',
      code: [
        'import os, subprocess, threading, time',
        'open("/workspace/leak.txt", "w").write("secret")',
        'open("/tmp/leak.txt", "w").write("secret")',
        'os.environ["LEAKED_ENV"] = "secret"',
        'secret_var = 42',
        'threading.Thread(target=lambda: time.sleep(600), daemon=True).start()',
        'print("dirty", os.getpid())',
      ].join('\n'),
    });
    assert.equal(dirty.done.exit_code, 0, dirty.stderr);
    const dirtyProc = await runStream(server.url, 'dirty', { language: 'python', mode: 'process', code: 'import os; print(os.path.exists("/workspace/leak.txt"))' });
    assert.equal(dirtyProc.stdout, 'True\n', 'the session keeps its own files');
    const dirtyUID = await uidOfWorkspaceWith(server, 'leak.txt');
    assert.ok(pooled.has(dirtyUID), `the first session adopted a pooled shell (uid ${dirtyUID}, pooled ${[...pooled].join(' ')})`);

    // The next sessions come from the pool too (refilled behind), each clean.
    for (const name of ['clean1', 'clean2', 'clean3']) {
      const before = await fullPool(inRange, 2);
      assert.ok(!before.has(dirtyUID), 'a shell never has the uid of a live session');
      const proc = await runStream(server.url, name, {
        language: 'python',
        mode: 'process',
        code: [
          'import os',
          'print(sorted(os.listdir("/workspace")), os.path.exists("/tmp/leak.txt"), "LEAKED_ENV" in os.environ)',
          'print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))',
        ].join('\n'),
      });
      assert.equal(proc.done.exit_code, 0, proc.stderr);
      const [files, pids] = proc.stdout.trim().split('\n');
      assert.equal(files, '[] False False', `${name}: an empty workspace, a private /tmp, no variable of another session`);
      // bwrap's init, the reporter, the program: nothing else in its PID namespace.
      assert.equal(pids, '[1, 2, 3]', `${name}: no process of another session`);
      const cell = await runStream(server.url, name, {
        language: 'python',
        mode: 'kernel',
        code: 'import os, threading; print("secret_var" in globals(), "LEAKED_ENV" in os.environ, threading.active_count() < 3)',
      });
      assert.equal(cell.stdout, 'False False True\n', `${name}: the kernel holds nothing of another session`);
      const uid = await sessionUID(server, name);
      assert.ok(before.has(uid), `${name} was served from the pool (uid ${uid})`);
      assert.notEqual(uid, dirtyUID);
      const del = await fetch(`${server.url}/api/sessions/${name}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
    }
  } finally {
    await server.stop();
  }
});

test('a tenant never gets another tenant\'s shell: each session has a uid and workspace of its own', async () => {
  const KEY_A = 'a'.repeat(32);
  const KEY_B = 'b'.repeat(32);
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '2', SLUICE_API_KEYS: `alice:${KEY_A},bob:${KEY_B}` }, { authorization: `Bearer ${KEY_A}` });
  try {
    const pooled = await fullPool(inRange, 2);
    const a = { authorization: `Bearer ${KEY_A}` };
    const b = { authorization: `Bearer ${KEY_B}` };
    const wrote = await runWith(server, 'main', { language: 'python', mode: 'process', code: 'open("/workspace/alice.txt", "w").write("a")' }, a);
    assert.equal(wrote.done.exit_code, 0, wrote.stderr);
    const seen = await runWith(server, 'main', { language: 'python', mode: 'process', code: 'import os; print(os.listdir("/workspace"))' }, b);
    assert.equal(seen.stdout, '[]\n', "bob's session of the same name sees none of alice's files");
    const uidA = await sessionUID(server, 'main', a);
    const uidB = await sessionUID(server, 'main', b);
    assert.notEqual(uidA, uidB);
    assert.ok(pooled.has(uidA) && pooled.has(uidB), 'the pool served them both');
  } finally {
    await server.stop();
  }
});

test('the pool size is respected, a session with other settings does not adopt a shell, and the uid cap goes to real sessions first', async () => {
  // 5 uids, one the first session's: 3 shells at most (one uid stays free for a real session).
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '3', SLUICE_UID_COUNT: '5' });
  try {
    const pooled = await fullPool(inRange, 3);
    assert.equal(pooled.size, 3);
    const kernels = (await hostProcesses()).filter((p) => inRange(p) && p.args.startsWith('/usr/bin/python3') && p.args.includes(KERNEL));
    assert.equal(kernels.length, 3, 'one kernel per shell');
    assert.equal(new Set(kernels.map((k) => k.uid)).size, 3);
    // Non-default settings (an env): a workspace and uid of their own, as without a pool; the
    // shells give their uids back when none is left.
    for (const id of ['s1', 's2', 's3', 's4']) {
      const res = await postJSON(`${server.url}/api/sessions`, { id, env: { CUSTOM: id } });
      assert.equal(res.status, 201, `${id}: ${await res.text()}`);
      const r = await runStream(server.url, id, { language: 'python', mode: 'process', code: 'import os; print(os.environ["CUSTOM"])' });
      assert.equal(r.stdout, `${id}\n`);
    }
    const fifth = await postJSON(`${server.url}/api/sessions`, { id: 's5' });
    assert.equal(fifth.status, 429, 'every uid is a session\'s: refused as without a pool');
    assert.equal((await waitingUIDs(inRange)).size, 0, 'no shell left');
    // Room again: the pool refills, never past its size.
    for (const id of ['s1', 's2']) assert.equal((await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' })).status, 204);
    const refilled = await fullPool(inRange, 1);
    assert.equal(refilled.size, 1, '2 uids free: one shell, one uid for a real session');
  } finally {
    await server.stop();
  }
});

test('SLUICE_POOL_SIZE=0: no pre-started sandbox, kernel or workspace, as before the pool', async () => {
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '0' });
  try {
    // A run ends only after the server's startup work, so a pool would have begun by then.
    const r = await runStream(server.url, 'one', { language: 'python', mode: 'process', code: 'print(1)' });
    assert.equal(r.stdout, '1\n');
    for (const id of ['one', 'first']) assert.equal((await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' })).status, 204);
    await assertNoShellLeft(server, inRange);
  } finally {
    await server.stop();
  }
});

test('a server that stops with a full pool leaves no process, workspace or cgroup', async () => {
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '2' });
  try {
    await fullPool(inRange, 2);
    // A session that adopted a shell and never ran anything: its spares go with it.
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'idle' })).status, 201);
    // Refilled behind it: two shells, plus the idle session's spares under its own uid.
    await fullPool(inRange, 3);
    const exited = new Promise<number | null>((r) => server.proc.once('exit', (code) => r(code)));
    server.proc.kill('SIGTERM');
    assert.equal(await exited, 0, server.logs());
    await assertNoShellLeft(server, inRange);
    const parent = `sluice-${createHash('sha256').update(server.dataDir).digest('hex').slice(0, 12)}`;
    for (const controller of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      const dir = join('/sys/fs/cgroup', controller, parent);
      const left = await stat(dir).then(
        async () => (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name),
        () => [] as string[],
      );
      assert.deepEqual(left, [], `cgroups left under ${dir}`);
    }
  } finally {
    // After our own SIGTERM it only removes the data dir.
    await server.stop();
  }
});

test('a server stopped during a burst of new sessions leaves no mount, process or workspace', async () => {
  // Shells being taken, adopted and refilled, and sessions built from scratch past the pool, all
  // at the moment the server closes: a session built after close() began, or a shell removed
  // on the side, must still be gone (unmounted) before the process exits.
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '2' });
  try {
    await fullPool(inRange, 2);
    const burst = Array.from({ length: 8 }, (_, i) => postJSON(`${server.url}/api/sessions`, { id: `burst-${i}` }).then((r) => r.status, () => 0));
    // SIGTERM once the first of them is made: the others are mid-way (adopting, mounting).
    await Promise.race(burst);
    const exited = new Promise<number | null>((r) => server.proc.once('exit', (code) => r(code)));
    const t0 = performance.now();
    server.proc.kill('SIGTERM');
    const statuses = await Promise.all(burst);
    // Made (201) or refused because the server stops (503), or cut off as it exits (0): nothing else.
    assert.ok(statuses.every((s) => s === 201 || s === 503 || s === 0), `statuses ${statuses.join(', ')}`);
    assert.equal(await exited, 0, server.logs());
    // Not held open by a keep-alive connection that was busy when the server began to close.
    const took = performance.now() - t0;
    assert.ok(took < 10_000, `exited ${Math.round(took)} ms after SIGTERM`);
    assert.deepEqual(await mountsUnder(server.dataDir), [], 'no workspace mount left');
    await assertNoShellLeft(server, inRange);
  } finally {
    await server.stop();
  }
});

test('pre-starting waits while an execution runs: a shell taken then is replaced once none runs, or after 5 s at most', async () => {
  const { server, inRange } = await poolServer({ SLUICE_POOL_SIZE: '2' });
  try {
    await fullPool(inRange, 2);
    // A program that keeps the server busy for 8 s, printing as it goes: past the first take's
    // 5 s cap, and ending well within the second's.
    const res = await postJSON(`${server.url}/api/sessions/first/stream`, { code: 'import time\nfor i in range(16):\n    print(i, flush=True)\n    time.sleep(0.5)', language: 'python', mode: 'process' });
    assert.equal(res.status, 200);
    let doneAt = Infinity;
    let printing!: () => void;
    const printed = new Promise<void>((r) => (printing = r));
    const run = readSSE(res, (e) => e.type === 'stdout' && printing()).then((events) => {
      doneAt = performance.now();
      return events;
    });
    // Up and printing first: while its sandbox starts, its bwrap looks like a shell's waiting one.
    await Promise.race([printed, run.then(() => assert.fail('the program ended before printing'))]);
    // A taken shell's uid keeps its waiting sandbox (the session's spare): a fill adds one more.
    const waiting = async (): Promise<number> => (await waitingUIDs(inRange)).size;
    const filled = async (n: number, what: string): Promise<number> =>
      waitFor(what, 30_000, async () => ((await waiting()) >= n ? performance.now() : undefined));
    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'taker-1' })).status, 201);
    const took1 = performance.now();
    const fill1 = await filled(3, 'the shell taken during the run to be replaced');
    // Never idle: the replacement waited, and came at the 5 s cap, before the program ended.
    assert.ok(fill1 - took1 >= 4500, `replaced ${Math.round(fill1 - took1)} ms after the take, while the program ran`);
    assert.ok(fill1 < doneAt, 'replaced before the program ended (the cap), not after');

    assert.equal((await postJSON(`${server.url}/api/sessions`, { id: 'taker-2' })).status, 201);
    const fill2 = await filled(4, 'the second shell taken to be replaced');
    const events = await run;
    assert.equal(outcome(events).done.exit_code, 0);
    // Taken with the program still running for seconds: replaced once it had ended.
    assert.ok(fill2 >= doneAt, `replaced ${Math.round(doneAt - fill2)} ms before the program ended`);
  } finally {
    await server.stop();
  }
});
