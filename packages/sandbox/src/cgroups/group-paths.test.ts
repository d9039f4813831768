import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CgroupError } from './cgroup-error.js';
import type { CgroupSupportV1, CgroupSupportV2 } from './cgroup-support.js';
import { controllerDir, groupDirs, parentDirs, procsFilesOf, validateGroupName } from './group-paths.js';

const v1: CgroupSupportV1 = {
  version: 'v1',
  parentName: 'sluice',
  hierarchies: [
    { controllers: ['memory'], mountPoint: '/sys/fs/cgroup/memory', parentDir: '/sys/fs/cgroup/memory/sluice', nested: false },
    { controllers: ['pids'], mountPoint: '/sys/fs/cgroup/pids', parentDir: '/sys/fs/cgroup/pids/sluice', nested: false },
    { controllers: ['cpu', 'cpuacct'], mountPoint: '/sys/fs/cgroup/cpu,cpuacct', parentDir: '/sys/fs/cgroup/cpu,cpuacct/svc/sluice', nested: true },
  ],
  controllers: ['memory', 'pids', 'cpu', 'cpuacct'],
  missing: [],
  notes: [],
};
const v2: CgroupSupportV2 = {
  version: 'v2',
  parentName: 'sluice',
  mountPoint: '/sys/fs/cgroup',
  parentDir: '/sys/fs/cgroup/sluice',
  nested: false,
  controllers: ['memory', 'pids', 'cpuacct'],
  missing: [{ controller: 'cpu', reason: 'test' }],
  notes: [],
};

test('v1: one directory and one cgroup.procs per hierarchy; co-mounted controllers share one', () => {
  assert.deepEqual(groupDirs(v1, 'exec-1'), [
    '/sys/fs/cgroup/memory/sluice/exec-1',
    '/sys/fs/cgroup/pids/sluice/exec-1',
    '/sys/fs/cgroup/cpu,cpuacct/svc/sluice/exec-1',
  ]);
  assert.deepEqual(procsFilesOf(v1, 'exec-1'), [
    '/sys/fs/cgroup/memory/sluice/exec-1/cgroup.procs',
    '/sys/fs/cgroup/pids/sluice/exec-1/cgroup.procs',
    '/sys/fs/cgroup/cpu,cpuacct/svc/sluice/exec-1/cgroup.procs',
  ]);
  assert.equal(controllerDir(v1, 'exec-1', 'cpuacct'), '/sys/fs/cgroup/cpu,cpuacct/svc/sluice/exec-1');
  assert.deepEqual(parentDirs(v1), ['/sys/fs/cgroup/memory/sluice', '/sys/fs/cgroup/pids/sluice', '/sys/fs/cgroup/cpu,cpuacct/svc/sluice']);
});

test('v2: a single directory; a missing controller has no directory', () => {
  assert.deepEqual(procsFilesOf(v2, 'e'), ['/sys/fs/cgroup/sluice/e/cgroup.procs']);
  assert.equal(controllerDir(v2, 'e', 'memory'), '/sys/fs/cgroup/sluice/e');
  assert.equal(controllerDir(v2, 'e', 'cpu'), undefined);
});

test('names that could escape the parent or hide are refused with the option named', () => {
  for (const bad of ['', '.', '..', '../x', 'a/b', '.hidden', '-x', 'a b', 'x'.repeat(129), 'nul\0']) {
    assert.throws(() => validateGroupName(bad), (err: unknown) => err instanceof CgroupError && err.code === 'EINVAL' && /name must be/.test(err.message), bad);
  }
  assert.throws(() => validateGroupName('../up', 'parentName'), /parentName must be/);
  assert.doesNotThrow(() => validateGroupName('exec_3f2a-9.b'));
  assert.throws(() => groupDirs(v2, '../../etc'), CgroupError);
});
