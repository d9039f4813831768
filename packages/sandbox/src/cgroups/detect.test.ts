import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CgroupMount } from './cgroup-mounts.js';
import { prepareCgroupSupport } from './detect.js';
import { parseProcCgroup } from './proc-cgroup.js';

/**
 * A directory tree standing in for cgroupfs. It cannot create control files on mkdir as the
 * kernel does, so every case pre-creates the files it needs and has controllers already
 * enabled; the real filesystem is covered by test/e2e/cgroups.test.ts.
 */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-cgtest-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, content);
  }
  return root;
}

const UNLIMITED = '9223372036854771712\n';

async function v1Tree(memoryLimit: string): Promise<{ root: string; mounts: CgroupMount[] }> {
  const root = await tree({
    'memory/memory.limit_in_bytes': UNLIMITED,
    'memory/svc/memory.limit_in_bytes': memoryLimit,
    'pids/cgroup.procs': '',
    'cpu/cpu.cfs_quota_us': '-1\n',
    'cpuacct/cpuacct.usage': '0\n',
  });
  const mounts: CgroupMount[] = [
    { mountPoint: join(root, 'cpu'), version: 'v1', controllers: ['cpu'], readOnly: false },
    { mountPoint: join(root, 'cpuacct'), version: 'v1', controllers: ['cpuacct'], readOnly: false },
    { mountPoint: join(root, 'memory'), version: 'v1', controllers: ['memory'], readOnly: false },
    { mountPoint: join(root, 'pids'), version: 'v1', controllers: ['pids'], readOnly: false },
    { mountPoint: join(root, 'systemd'), version: 'v1', controllers: [], readOnly: false },
    // A hybrid host's unified mount: only hugetlb, so v1 wins.
    { mountPoint: join(root, 'unified'), version: 'v2', controllers: [], readOnly: false },
  ];
  await writeFile(join(root, 'unified/cgroup.controllers'), 'hugetlb\n').catch(async () => {
    await mkdir(join(root, 'unified'));
    await writeFile(join(root, 'unified/cgroup.controllers'), 'hugetlb\n');
  });
  return { root, mounts };
}

const self = parseProcCgroup('8:pids:/\n4:memory:/svc\n2:cpuacct:/\n1:cpu:/\n0::/\n');

test('a hybrid host with an unlimited own memory cgroup gets v1 parents at each hierarchy root', async () => {
  const { root, mounts } = await v1Tree(UNLIMITED);
  try {
    const s = await prepareCgroupSupport(mounts, self, { parentName: 'sl' });
    assert.equal(s.version, 'v1');
    if (s.version !== 'v1') return;
    assert.deepEqual(s.controllers, ['memory', 'pids', 'cpu', 'cpuacct']);
    assert.deepEqual(
      s.hierarchies.map((h) => [h.controllers.join(','), h.parentDir.slice(root.length), h.nested]),
      [['memory', '/memory/sl', false], ['pids', '/pids/sl', false], ['cpu', '/cpu/sl', false], ['cpuacct', '/cpuacct/sl', false]],
    );
    assert.deepEqual(s.missing, []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a limited own memory cgroup puts the memory parent under it, so its limit covers the sandboxes', async () => {
  const { root, mounts } = await v1Tree('1073741824\n');
  try {
    const s = await prepareCgroupSupport(mounts, self);
    assert.equal(s.version, 'v1');
    if (s.version !== 'v1') return;
    const mem = s.hierarchies.find((h) => h.controllers.includes('memory'));
    assert.equal(mem?.parentDir, join(root, 'memory/svc/sluice'));
    assert.equal(mem?.nested, true);
    assert.equal(s.hierarchies.find((h) => h.controllers.includes('pids'))?.parentDir, join(root, 'pids/sluice'));
    const forcedRoot = await prepareCgroupSupport(mounts, self, { placement: 'root', parentName: 'r' });
    assert.equal(forcedRoot.version === 'v1' && forcedRoot.hierarchies.find((h) => h.controllers.includes('memory'))?.parentDir, join(root, 'memory/r'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('v1 without some controllers reports them missing; read-only ones say so', async () => {
  const { root, mounts } = await v1Tree(UNLIMITED);
  try {
    const partial = mounts.filter((m) => !m.controllers.includes('cpu')).map((m) => (m.controllers.includes('pids') ? { ...m, readOnly: true } : m));
    const s = await prepareCgroupSupport(partial, self);
    assert.equal(s.version, 'v1');
    if (s.version !== 'v1') return;
    assert.deepEqual(s.controllers, ['memory', 'cpuacct']);
    assert.deepEqual(
      s.missing.map((m) => m.controller),
      ['pids', 'cpu'],
    );
    assert.match(s.missing[0]?.reason ?? '', /pids is mounted read-only/);
    assert.match(s.missing[1]?.reason ?? '', /no v1 hierarchy carries it/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a v2 host with controllers delegated: the parent goes under a limited own group', async () => {
  const root = await tree({
    'cgroup.controllers': 'cpuset cpu io memory hugetlb pids\n',
    'cgroup.subtree_control': 'cpu memory pids\n',
    'app.slice/cgroup.controllers': 'cpu memory pids\n',
    'app.slice/cgroup.subtree_control': 'cpu memory pids\n',
    'app.slice/memory.max': 'max\n',
    'app.slice/svc/cgroup.controllers': 'cpu memory pids\n',
    'app.slice/svc/cgroup.subtree_control': 'cpu memory pids\n',
    'app.slice/svc/memory.max': '2147483648\n',
    'app.slice/svc/sluice/cgroup.controllers': 'cpu memory pids\n',
    'app.slice/svc/sluice/cgroup.subtree_control': 'cpu memory pids\n',
    // cpu not offered to the root-level parent (its parent never enabled it for children).
    'sluice/cgroup.controllers': 'memory pids\n',
    'sluice/cgroup.subtree_control': 'memory pids\n',
  });
  const mounts: CgroupMount[] = [{ mountPoint: root, version: 'v2', controllers: [], readOnly: false }];
  try {
    const s = await prepareCgroupSupport(mounts, parseProcCgroup('0::/app.slice/svc\n'));
    assert.equal(s.version, 'v2');
    if (s.version !== 'v2') return;
    assert.equal(s.parentDir, join(root, 'app.slice/svc/sluice'));
    assert.equal(s.nested, true);
    assert.deepEqual(s.controllers, ['memory', 'pids', 'cpu', 'cpuacct']);

    // Forced to the root, where this tree does not offer cpu to our parent.
    const atRoot = await prepareCgroupSupport(mounts, parseProcCgroup('0::/app.slice/svc\n'), { placement: 'root' });
    assert.equal(atRoot.version, 'v2');
    if (atRoot.version !== 'v2') return;
    assert.equal(atRoot.parentDir, join(root, 'sluice'));
    assert.equal(atRoot.nested, false);
    assert.deepEqual(atRoot.controllers, ['memory', 'pids', 'cpuacct']);
    assert.deepEqual(atRoot.missing.map((m) => m.controller), ['cpu']);
    assert.match(atRoot.missing[0]?.reason ?? '', /not offered in .*\/sluice\/cgroup\.controllers/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('no usable cgroups gives none with a reason for each version', async () => {
  const s = await prepareCgroupSupport([{ mountPoint: '/sys/fs/cgroup', version: 'v2', controllers: [], readOnly: true }], parseProcCgroup('0::/\n'));
  assert.equal(s.version, 'none');
  if (s.version !== 'none') return;
  assert.match(s.reason, /cgroup v2: \/sys\/fs\/cgroup is mounted read-only/);
  assert.match(s.reason, /cgroup v1: .*no v1 hierarchy carries it/);
});

test('a parent that cannot be created (here: its mount point is missing) gives none naming the path and errno', async () => {
  const mounts: CgroupMount[] = [{ mountPoint: '/nonexistent/sluice-test/memory', version: 'v1', controllers: ['memory'], readOnly: false }];
  const s = await prepareCgroupSupport(mounts, parseProcCgroup('4:memory:/\n'));
  assert.equal(s.version, 'none');
  assert.match(s.version === 'none' ? s.reason : '', /memory: cgroup: cannot create cgroup \/nonexistent\/sluice-test\/memory\/sluice: ENOENT/);
});

test('an invalid parent name is a configuration error, not a host condition', async () => {
  await assert.rejects(prepareCgroupSupport([], parseProcCgroup(''), { parentName: '../etc' }), /parentName must be/);
});
