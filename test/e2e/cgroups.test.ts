/**
 * Per-execution cgroups on this machine's real cgroup filesystem (no server): a process joins
 * a group the way the keeper will (its shell writes its own pid into every procsFiles() path,
 * then execs the program), and the kernel must hold it to the limits — a memory bomb is
 * OOM-killed, a fork bomb plateaus at pids.max, a busy loop gets its CPU share — while
 * killAll, destroy and the start-up sweep leave nothing behind.
 *
 * The groups live under a parent of this file's own (`sluice-e2e-<pid>`), so a server running
 * on the same machine and its `sluice` parent are never touched.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { access, readdir, rmdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
// Not yet re-exported from @sluice/sandbox's index; the compiled module is imported directly.
import {
  detectCgroups,
  ExecutionCgroup,
  sweepStaleCgroups,
  watchCPUBudget,
  type ActiveCgroupSupport,
  type CgroupSupport,
} from '@sluice/sandbox';

const PARENT = `sluice-e2e-${process.pid}`;
const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 64 * MiB, pids: 32, cpuQuota: 0.25 };
const PYTHON = '/usr/bin/python3';

let support: CgroupSupport = { version: 'none', reason: 'not detected yet' };
let groupSeq = 0;

before(async () => {
  support = await detectCgroups({ parentName: PARENT });
});

after(async () => {
  if (support.version === 'none') return;
  // Whatever a failed test left behind, then our parent groups themselves.
  await sweepStaleCgroups(support);
  const dirs = support.version === 'v2' ? [support.parentDir] : support.hierarchies.map((h) => h.parentDir);
  for (const dir of dirs) await rmdir(dir).catch(() => {});
});

/** The detected support, or skips the test when this host cannot run it. */
function active(t: TestContext): ActiveCgroupSupport | undefined {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to create cgroups');
    return undefined;
  }
  if (support.version === 'none') {
    t.skip(`no usable cgroups: ${support.reason}`);
    return undefined;
  }
  return support;
}

/** A fresh group with LIMITS (or `limits`), destroyed when the test ends. */
async function newGroup(t: TestContext, s: ActiveCgroupSupport, limits = LIMITS): Promise<ExecutionCgroup> {
  const group = await ExecutionCgroup.create(s, `g${++groupSeq}-${Date.now().toString(36)}`, limits);
  t.after(() => group.destroy());
  return group;
}

interface Joined {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

/**
 * Starts `sh` that joins every group file (as the keeper's child will, before anything can
 * fork) and then execs `argv`; exit status 126 means the join failed.
 */
function startJoined(t: TestContext, group: ExecutionCgroup, argv: string[]): Joined {
  const files = group.procsFiles();
  const script = `n=$1; shift; i=0; while [ $i -lt $n ]; do echo $$ > "$1" || exit 126; shift; i=$((i+1)); done; exec "$@"`;
  const child = spawn('/bin/sh', ['-c', script, 'join', String(files.length), ...files, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exit, stdout: () => out, stderr: () => err };
}

/** Waits until `pred` holds, polling; fails after `ms`. */
async function waitFor(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function gone(path: string): Promise<boolean> {
  return access(path).then(
    () => false,
    () => true,
  );
}

test('this host is detected as cgroup v1 with every controller, under a parent of our own', (t) => {
  const s = active(t);
  if (!s) return;
  // This machine: v1 hierarchies plus a unified mount that carries only hugetlb.
  assert.equal(s.version, 'v1');
  assert.deepEqual(s.controllers, ['memory', 'pids', 'cpu', 'cpuacct']);
  if (s.version === 'v1') for (const h of s.hierarchies) assert.ok(h.parentDir.endsWith(`/${PARENT}`), h.parentDir);
});

test('a python memory bomb is OOM-killed (SIGKILL, exit 137 through bwrap) and oomKills counts it', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await newGroup(t, s);
  // oomKills() keeps its file open and rereads it: the read before the bomb must not stick.
  assert.equal(group.oomKills(), 0);
  const run = startJoined(t, group, [PYTHON, '-c', 'a = []\nwhile True:\n    a.append(b"x" * (1 << 20))\n']);
  const { code, signal } = await run.exit;
  assert.equal(signal, 'SIGKILL', `expected an OOM kill, got code ${code} signal ${signal}; stderr: ${run.stderr()}`);
  const stats = await group.stats();
  assert.equal(group.oomKills(), stats.oomKills);
  t.diagnostic(`oomKills ${stats.oomKills}, peak ${((stats.memoryPeakBytes ?? 0) / MiB).toFixed(1)} MiB`);
  assert.ok((stats.oomKills ?? 0) >= 1, `oomKills ${stats.oomKills}`);
  assert.ok((stats.memoryPeakBytes ?? 0) >= 32 * MiB && (stats.memoryPeakBytes ?? 0) <= 64 * MiB, `peak ${stats.memoryPeakBytes}`);
});

test('a fork bomb stays at pids.max (32 tasks) and pidsMaxHits counts the refusals', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await newGroup(t, s);
  const bomb = [
    'import os, time',
    'ok = failed = 0',
    'for _ in range(200):',
    '    try:',
    '        pid = os.fork()',
    '    except OSError:',
    '        failed += 1',
    '        continue',
    '    if pid == 0:',
    '        time.sleep(60)',
    '        os._exit(0)',
    '    ok += 1',
    'print(ok, failed, flush=True)',
    'time.sleep(60)',
  ].join('\n');
  const run = startJoined(t, group, [PYTHON, '-c', bomb]);
  await waitFor('the fork loop to finish', () => run.stdout().includes('\n'));
  const [ok, failed] = run.stdout().trim().split(' ').map(Number) as [number, number];
  const stats = await group.stats();
  t.diagnostic(`forks ok ${ok}, refused ${failed}, pids.current ${stats.pidsCurrent}, pids.events max ${stats.pidsMaxHits}`);
  assert.ok(ok + 1 <= 32, `${ok} children + parent exceed pids.max`);
  assert.ok(failed >= 200 - 31, `only ${failed} forks refused`);
  assert.ok((stats.pidsCurrent ?? 0) <= 32, `pids.current ${stats.pidsCurrent}`);
  assert.ok((stats.pidsMaxHits ?? 0) >= 1, `pidsMaxHits ${stats.pidsMaxHits}`);
  assert.equal((await group.pids()).length, ok + 1);

  const killed = await group.killAll();
  t.diagnostic(`killAll: ${killed.rounds} round(s)`);
  assert.equal(killed.empty, true, `left: ${killed.remaining.join(' ')}`);
  assert.equal((await run.exit).signal, 'SIGKILL');
});

test('a busy loop of 1.5 s wall time gets only its 0.25 CPU share, as cpuUsageNs shows', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await newGroup(t, s);
  const started = Date.now();
  const run = startJoined(t, group, [PYTHON, '-c', 'import time\nt = time.time()\nwhile time.time() - t < 1.5:\n    pass\n']);
  const { code } = await run.exit;
  const wallMs = Date.now() - started;
  assert.equal(code, 0, run.stderr());
  const used = await group.cpuUsageNs();
  assert.ok(used !== undefined, 'CPU accounting available');
  t.diagnostic(`${(used / 1e9).toFixed(3)} s of CPU in ${wallMs} ms wall`);
  // 0.25 × ~1.55 s ≈ 0.39 s; unthrottled it would be ≥ 1.5 s.
  assert.ok(used <= 0.55e9, `used ${(used / 1e9).toFixed(3)} s of CPU in ${wallMs} ms wall`);
  assert.ok(used >= 0.1e9, `accounting saw only ${(used / 1e9).toFixed(3)} s`);
  assert.equal((await group.stats()).cpuUsageNs, used);
});

test('a CPU-time budget holds across forked workers: the watch fires and killAll ends them', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await newGroup(t, s, { ...LIMITS, cpuQuota: 2 });
  const busy = 'import os\nfor _ in range(3):\n    if os.fork() == 0:\n        break\nwhile True:\n    pass\n';
  const run = startJoined(t, group, [PYTHON, '-c', busy]);
  const budgetNs = 0.4e9;
  let seenNs = 0;
  const fired = new Promise<void>((resolve) => {
    watchCPUBudget(group, {
      budgetNs,
      intervalMs: 25,
      onExceeded: (ns) => {
        seenNs = ns;
        resolve();
      },
    });
  });
  await fired;
  const killed = await group.killAll();
  assert.equal(killed.empty, true);
  assert.equal((await run.exit).signal, 'SIGKILL');
  const total = (await group.cpuUsageNs()) ?? 0;
  t.diagnostic(`budget ${budgetNs / 1e9} s: fired at ${(seenNs / 1e9).toFixed(3)} s, total after kill ${(total / 1e9).toFixed(3)} s`);
  assert.ok(seenNs >= budgetNs, `fired at ${seenNs}`);
  // 4 processes on ≤ 2 CPUs, polled every 25 ms: overshoot stays small.
  assert.ok(total < budgetNs + 0.3e9, `total ${(total / 1e9).toFixed(3)} s`);
});

test('killAll empties a group whose processes fork, and destroy removes every directory', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await ExecutionCgroup.create(s, `kill-${Date.now().toString(36)}`, LIMITS);
  t.after(() => group.destroy());
  const run = startJoined(t, group, ['/bin/sh', '-c', 'sleep 1000 & sleep 1000 & exec sleep 1000']);
  await waitFor('three processes in the group', async () => (await group.pids()).length === 3);

  const killed = await group.killAll();
  assert.equal(killed.empty, true);
  assert.deepEqual(await group.pids(), []);
  assert.equal((await run.exit).signal, 'SIGKILL');

  assert.equal(group.oomKills(), 0); // opens the file that destroy closes
  await group.destroy();
  for (const dir of group.dirs) assert.ok(await gone(dir), `${dir} still exists`);
  const open = (await readdir('/proc/self/fd')).map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
  assert.deepEqual(open.filter((path) => path.includes(group.name)), [], 'destroy closes the files it kept open');
  assert.equal(group.oomKills(), undefined, 'a destroyed group has no OOM count');
  await group.destroy(); // idempotent
});

test('destroy of a group with a live process kills it first', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await ExecutionCgroup.create(s, `busy-${Date.now().toString(36)}`, LIMITS);
  t.after(() => group.destroy());
  const run = startJoined(t, group, ['/bin/sleep', '1000']);
  await waitFor('the sleeper to join', async () => (await group.pids()).length === 1);
  await group.destroy();
  for (const dir of group.dirs) assert.ok(await gone(dir), `${dir} still exists`);
  assert.equal((await run.exit).signal, 'SIGKILL');
});

test('sweepStaleCgroups kills the tasks of a leftover group and removes it', { timeout: 30_000 }, async (t) => {
  const s = active(t);
  if (!s) return;
  // A group a crashed server left behind: no handle any more, a process still inside.
  const name = `stale-${Date.now().toString(36)}`;
  const leftover = await ExecutionCgroup.create(s, name, LIMITS);
  const run = startJoined(t, leftover, ['/bin/sh', '-c', 'sleep 1000 & exec sleep 1000']);
  await waitFor('the leftover processes to join', async () => (await leftover.pids()).length === 2);
  const pids = await leftover.pids();

  const result = await sweepStaleCgroups(s);
  assert.deepEqual(result.failed, []);
  assert.ok(result.removed.includes(name), `removed: ${result.removed.join(' ')}`);
  assert.deepEqual(result.killedPids.filter((p) => pids.includes(p)).sort(), [...pids].sort());
  for (const dir of leftover.dirs) assert.ok(await gone(dir), `${dir} still exists`);
  assert.equal((await run.exit).signal, 'SIGKILL');
});

test('a second group of the same name is refused, and bad limits never reach the kernel', async (t) => {
  const s = active(t);
  if (!s) return;
  const group = await newGroup(t, s);
  await assert.rejects(ExecutionCgroup.create(s, group.name, LIMITS), /EEXIST/);
  await assert.rejects(ExecutionCgroup.create(s, 'bad-limits', { pids: 0 }), /pids must be an integer ≥ 1; got 0/);
  for (const dir of ExecutionCgroup.attach(s, 'bad-limits').dirs) assert.ok(await gone(dir));
});
