import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupError } from './cgroup-error.js';
import type { CgroupSupportV1, CgroupSupportV2 } from './cgroup-support.js';
import { ExecutionCgroup } from './execution-cgroup.js';

// A plain directory tree stands in for cgroupfs: enough for reading counters and for the
// failure paths; the real filesystem is covered by test/e2e/cgroups.test.ts.

async function withTree(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-cgtest-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function v2At(root: string): CgroupSupportV2 {
  return { version: 'v2', parentName: 'sluice', mountPoint: root, parentDir: join(root, 'sluice'), nested: false, controllers: ['memory', 'pids', 'cpu', 'cpuacct'], missing: [], notes: [] };
}

function v1At(root: string): CgroupSupportV1 {
  const h = (c: 'memory' | 'pids' | 'cpu' | 'cpuacct') => ({ controllers: [c], mountPoint: join(root, c), parentDir: join(root, c, 'sluice'), nested: false });
  return { version: 'v1', parentName: 'sluice', hierarchies: [h('memory'), h('pids'), h('cpu'), h('cpuacct')], controllers: ['memory', 'pids', 'cpu', 'cpuacct'], missing: [], notes: [] };
}

async function files(dir: string, content: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(content)) await writeFile(join(dir, name), text);
}

test('v2 stats: oom_kill from memory.events, peak, usage_usec in ns, pids.events max', async () => {
  await withTree(async (root) => {
    const s = v2At(root);
    await files(join(s.parentDir, 'e1'), {
      'memory.events': 'low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n',
      'memory.peak': '67108864\n',
      'cpu.stat': 'usage_usec 376152\nuser_usec 370000\nsystem_usec 6152\n',
      'pids.events': 'max 7\n',
      'pids.current': '3\n',
      'cgroup.procs': '101\n102\n',
    });
    const g = ExecutionCgroup.attach(s, 'e1');
    assert.deepEqual(await g.stats(), { oomKills: 1, memoryPeakBytes: 67108864, cpuUsageNs: 376152000, pidsMaxHits: 7, pidsCurrent: 3 });
    assert.deepEqual(g.procsFiles(), [join(s.parentDir, 'e1', 'cgroup.procs')]);
    assert.deepEqual(await g.pids(), [101, 102]);
  });
});

test('v1 stats come from each hierarchy; files an older kernel lacks are left out', async () => {
  await withTree(async (root) => {
    const s = v1At(root);
    await files(join(root, 'memory/sluice/e2'), { 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n', 'memory.max_usage_in_bytes': '1048576\n', 'cgroup.procs': '5\n' });
    await files(join(root, 'pids/sluice/e2'), { 'pids.current': '1\n', 'cgroup.procs': '5\n6\n' });
    await files(join(root, 'cpu/sluice/e2'), { 'cgroup.procs': '' });
    await files(join(root, 'cpuacct/sluice/e2'), { 'cpuacct.usage': '781234567\n', 'cgroup.procs': '' });
    const g = ExecutionCgroup.attach(s, 'e2');
    assert.deepEqual(await g.stats(), { oomKills: 2, memoryPeakBytes: 1048576, cpuUsageNs: 781234567, pidsCurrent: 1 });
    assert.equal(await g.cpuUsageNs(), 781234567);
    assert.deepEqual((await g.pids()).sort((a, b) => a - b), [5, 6]);
    assert.equal(g.procsFiles().length, 4);
  });
});

test('oomKills rereads its file on every call (the file stays open between reads)', async () => {
  await withTree(async (root) => {
    const s = v1At(root);
    const file = join(root, 'memory/sluice/e4/memory.oom_control');
    await files(join(root, 'memory/sluice/e4'), { 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n' });
    const g = ExecutionCgroup.attach(s, 'e4');
    assert.equal(g.oomKills(), 0);
    await writeFile(file, 'oom_kill_disable 0\nunder_oom 0\noom_kill 12\n');
    assert.equal(g.oomKills(), 12);
    assert.equal(ExecutionCgroup.attach(s, 'missing').oomKills(), undefined);
  });
});

test('create fails with the file and errno named, and removes what it made', async () => {
  await withTree(async (root) => {
    const s = v1At(root);
    for (const h of s.hierarchies) await mkdir(h.parentDir, { recursive: true });
    // A plain directory has no pids.max: the write fails with ENOENT, as on a kernel without the file.
    await assert.rejects(ExecutionCgroup.create(s, 'e3', { memoryBytes: 64 << 20, pids: 32 }), (err: unknown) => {
      assert.ok(err instanceof CgroupError);
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.path, join(root, 'memory/sluice/e3/memory.limit_in_bytes'));
      assert.match(err.message, /^cgroup: cannot open for writing .*memory\.limit_in_bytes: ENOENT \(no such file or directory\)$/);
      return true;
    });
    for (const h of s.hierarchies) assert.deepEqual(await readdir(h.parentDir), [], `${h.parentDir} left clean`);
  });
});

test('create refuses an existing group instead of sharing it', async () => {
  await withTree(async (root) => {
    const s = v2At(root);
    await mkdir(join(s.parentDir, 'dup'), { recursive: true });
    await assert.rejects(ExecutionCgroup.create(s, 'dup', {}), (err: unknown) => err instanceof CgroupError && err.code === 'EEXIST' && /already exists/.test(err.message));
    assert.deepEqual(await readdir(s.parentDir), ['dup'], 'the existing group is left alone');
  });
});

test('destroy of a group that is already gone is a no-op', async () => {
  await withTree(async (root) => {
    const g = ExecutionCgroup.attach(v1At(root), 'gone');
    await g.destroy();
    assert.deepEqual(await g.pids(), []);
  });
});
