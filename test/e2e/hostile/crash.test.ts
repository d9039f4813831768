/**
 * Server crash and restart (docs/sandbox.md, "Stopping"). A server is SIGKILLed while a sandbox
 * runs a long command and a double-forked daemon: the sandboxes die with it (the keeper's
 * PDEATHSIG, bwrap's --die-with-parent), so within seconds nothing with the run's marker and
 * nothing of the session's host uid is left on the host. What the kernel does not clean up stays
 * behind (the session's tmpfs workspace mounts, the execution's cgroups), and a new server on the
 * same data directory removes it as it starts: the workspaces are unmounted and deleted, and
 * every group under its parent cgroup (named after the data directory) is swept.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { access, mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { CLI, startServer, type TestServer } from '../helpers/server.js';
import { doneOf, postJSON, readSSE, stream, text, type Timed } from '../helpers/client.js';
import { hostProcesses, uidsOf, waitFor } from '../helpers/host.js';

const HIERARCHIES = ['pids', 'memory', 'cpu', 'cpuacct'] as const;
const UID_BASE = randomInt(2_000_000, 3_000_000);

/** Everything to undo if the test fails half-way. */
let first: TestServer | undefined;
let second: ChildProcess | undefined;
let dataDir: string | undefined;
let parentName: string | undefined;

after(async () => {
  if (first && first.proc.exitCode === null && first.proc.signalCode === null) first.proc.kill('SIGKILL');
  if (second && second.exitCode === null && second.signalCode === null) {
    const exited = new Promise((r) => second?.once('exit', r));
    second.kill('SIGTERM');
    const timer = setTimeout(() => second?.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  if (dataDir !== undefined) {
    for (const m of (await mountsUnder(dataDir)).reverse()) await umount(m);
    await rm(dataDir, { recursive: true, force: true });
  }
  // Nothing should be left by now; this only tidies up after a failure: the groups under this
  // test's own parent (named after its data dir), whose processes died with the server.
  for (const dir of parents.values()) {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await rmdir(join(dir, e.name)).catch(() => {});
    await rmdir(dir).catch(() => {});
  }
});

/** Mount points at or below `dir`, in /proc/self/mounts order. */
async function mountsUnder(dir: string): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/** The groups under the server's parent group in hierarchy `h`. */
async function groupsUnder(h: string): Promise<string[]> {
  const entries = await readdir(parentDir(h), { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

function umount(target: string): Promise<void> {
  return new Promise((resolve) => execFile('/usr/bin/umount', ['-l', target], () => resolve()));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** This server's parent group directory in each hierarchy, found once the first server runs. */
const parents = new Map<string, string>();

/**
 * Finds the parent group (`sluice-<12 hex of sha256(dataDir)>`) in each hierarchy: at its root,
 * or under the server's own cgroup when that one is limited (docs/limits.md).
 */
async function findParents(serverPID: number): Promise<void> {
  assert.ok(parentName);
  const own = new Map<string, string>();
  for (const line of (await readFile(`/proc/${serverPID}/cgroup`, 'utf8')).split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers !== undefined && path !== undefined) for (const c of controllers.split(',')) own.set(c, path);
  }
  for (const h of HIERARCHIES) {
    for (const dir of [join('/sys/fs/cgroup', h, parentName), join('/sys/fs/cgroup', h, own.get(h) ?? '/', parentName)]) {
      if (await exists(dir)) {
        parents.set(h, dir);
        break;
      }
    }
    assert.ok(parents.has(h), `the server's parent group ${parentName} in the ${h} hierarchy`);
  }
}

function parentDir(h: string): string {
  const dir = parents.get(h);
  assert.ok(dir, `parent group in ${h}`);
  return dir;
}

/** `node <CLI> serve` on the given data dir; resolves with its URL once it listens. */
async function serve(dir: string): Promise<{ proc: ChildProcess; url: string; logs: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dir], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_LOG_LEVEL: 'warn', SLUICE_UID_BASE: String(UID_BASE) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  second = proc;
  let logs = '';
  proc.stdout?.setEncoding('utf8').on('data', (t: string) => (logs += t));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the new server did not start in 20 s:\n${logs}`)), 20_000);
    proc.stderr?.setEncoding('utf8').on('data', (t: string) => {
      logs += t;
      const m = /listening on (http:\/\/[^\s]+)/.exec(logs);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the new server exited with ${code}:\n${logs}`));
    });
  });
  return { proc, url, logs: () => logs };
}

test('SIGKILLed server: its sandboxes (and a double-forked daemon) die with it; a restart on the same data dir unmounts stale workspaces and sweeps stale cgroups', async (t) => {
  first = await startServer({ SLUICE_UID_BASE: String(UID_BASE) });
  dataDir = first.dataDir;
  parentName = `sluice-${createHash('sha256').update(resolvePath(dataDir)).digest('hex').slice(0, 12)}`;
  const marker = String(randomInt(100_000_000, 999_999_999));
  // The server creates its parent group as it starts; a first run makes sure it exists.
  const warm = await stream(first.url, 'warm-up', { code: 'print("ok")' });
  assert.equal(text(warm, 'stdout'), 'ok\n');
  await findParents(first.proc.pid ?? 0);

  // A long command, and a daemon that double-forks away from it (and ignores SIGTERM/SIGHUP).
  const res = await postJSON(`${first.url}/api/sessions/crash/stream`, {
    language: 'bash',
    code: [
      `( trap '' TERM HUP; setsid sleep ${marker} < /dev/null > /dev/null 2>&1 & )`,
      'echo ready',
      `exec sleep ${marker}1`,
    ].join('\n'),
    timeout: 300,
  });
  assert.equal(res.status, 200);
  const executionID = res.headers.get('sluice-execution-id');
  assert.ok(executionID);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const seen: Timed[] = [];
  const events = readSSE(res, (ev) => {
    seen.push(ev);
    if (ev.type === 'stdout' && ev.content.includes('ready')) ready();
  }).catch((err: unknown) => err);
  await Promise.race([
    isReady,
    events.then(() => {
      throw new Error(`the stream ended before "ready": ${JSON.stringify(seen)}`);
    }),
  ]);

  const sleepers = await waitFor('both sleeps on the host', 5000, async () => {
    const procs = (await hostProcesses()).filter((p) => p.args.includes(marker) && p.args.startsWith('sleep'));
    return procs.length === 2 ? procs : undefined;
  });
  const uid = (await uidsOf(sleepers[0]?.pid ?? 0))[0] ?? 0;
  assert.ok(uid >= UID_BASE, `the sleeps run as the session's uid (${uid})`);
  for (const s of sleepers) assert.deepEqual(await uidsOf(s.pid), [uid, uid, uid, uid]);
  const daemon = sleepers.find((p) => p.args === `sleep ${marker}`);
  assert.ok(daemon, 'the daemon runs');

  // What a crash leaves behind: the session's workspace mounts and the execution's groups (a
  // session served from the pool of pre-started sandboxes has them under pool/ and pool-p…,
  // and the pool's own shells leave theirs too).
  const wsMounts = await mountsUnder(dataDir);
  assert.ok(wsMounts.length >= 4, `each session's (warm-up, crash) workspace tmpfs and its view are mounted: ${wsMounts.join(' ')}`);
  for (const h of HIERARCHIES) assert.ok((await groupsUnder(h)).length > 0, `the execution's ${h} group exists`);
  // And one more stale group of our own making.
  await mkdir(join(parentDir('pids'), 'stale-test'));

  const firstProc = first.proc;
  const exited = new Promise((r) => firstProc.once('exit', r));
  const killedAt = performance.now();
  firstProc.kill('SIGKILL');
  await exited;

  let firstLook: string | undefined;
  const goneMs = await waitFor(`no process with ${marker} and none of uid ${uid} on the host`, 5000, async () => {
    const procs = await hostProcesses();
    const left = procs.filter((p) => p.args.includes(marker) || p.uid === uid);
    firstLook ??= `${Math.round(performance.now() - killedAt)} ms after the kill: ${left.map((p) => `${p.stat} ${p.args.slice(0, 40)}`).join('; ') || 'nothing'}`;
    return left.length === 0 ? performance.now() - killedAt : undefined;
  });
  t.diagnostic(`sandbox processes gone ${Math.round(goneMs)} ms after the server's SIGKILL (first look ${firstLook})`);
  const err = await events;
  assert.ok(err instanceof Error || Array.isArray(err), 'the stream ended with the server');
  assert.ok(!seen.some((e) => e.type === 'done'), 'no done from a killed server');

  // Nothing swept the leftovers yet: they are what the restart has to clean.
  assert.deepEqual(await mountsUnder(dataDir), wsMounts, 'stale mounts stay until a restart');
  assert.ok((await groupsUnder('pids')).some((g) => g === executionID || g.startsWith('pool-')), "the dead execution's group stays until a restart");

  const restartedAt = performance.now();
  const next = await serve(dataDir);
  t.diagnostic(`new server listening ${Math.round(performance.now() - restartedAt)} ms after spawn`);
  // Workspaces are cleaned before it listens.
  assert.deepEqual(await mountsUnder(dataDir), [], 'no mount left under the data dir');
  assert.deepEqual(await readdir(join(dataDir, 'workspaces')), [], 'the stale workspace directories are removed');

  const sweptMs = await waitFor('the stale cgroups to be swept', 5000, async () => {
    for (const h of HIERARCHIES) {
      if ((await groupsUnder(h)).length > 0) return undefined;
    }
    return performance.now() - restartedAt;
  });
  t.diagnostic(`stale cgroups swept ${Math.round(sweptMs)} ms after the restart began`);
  for (const h of HIERARCHIES) assert.deepEqual(await groupsUnder(h), [], `groups left under ${parentDir(h)}`);

  // The new server works on the same data dir.
  const health = await fetch(`${next.url}/healthz`);
  assert.equal(health.status, 200, await health.text());
  const alive = await stream(next.url, 'after-crash', { code: 'print("alive")' });
  assert.equal(text(alive, 'stdout'), 'alive\n');
  assert.equal(doneOf(alive).reason, 'exited');

  // A clean stop removes its workspaces and its parent groups.
  const stopped = new Promise<number | null>((r) => next.proc.once('exit', (code) => r(code)));
  next.proc.kill('SIGTERM');
  assert.equal(await stopped, 0, next.logs());
  assert.deepEqual(await mountsUnder(dataDir), []);
  for (const h of HIERARCHIES) assert.equal(await exists(parentDir(h)), false, `${parentDir(h)} removed at stop`);
});
