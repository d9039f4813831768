import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeCgroupPath, parseProcCgroup, v1PathOf } from './proc-cgroup.js';

test('a v1 host with an empty unified line yields every hierarchy and the v2 path', () => {
  const text = [
    '9:name=systemd:/',
    '8:pids:/',
    '4:memory:/process_api/8ad26b8d',
    '2:cpuacct:/',
    '1:cpu:/',
    '0::/',
    '',
  ].join('\n');
  const cg = parseProcCgroup(text);
  assert.equal(cg.unified, '/');
  assert.equal(cg.v1.length, 5);
  assert.equal(v1PathOf(cg, 'memory'), '/process_api/8ad26b8d');
  assert.equal(v1PathOf(cg, 'pids'), '/');
  assert.equal(v1PathOf(cg, 'freezer'), undefined);
  assert.deepEqual(cg.v1[0], { hierarchyID: 9, controllers: ['name=systemd'], path: '/' });
});

test('co-mounted controllers share one entry', () => {
  const cg = parseProcCgroup('3:cpu,cpuacct:/system.slice/sluice.service\n');
  assert.equal(v1PathOf(cg, 'cpu'), '/system.slice/sluice.service');
  assert.equal(v1PathOf(cg, 'cpuacct'), '/system.slice/sluice.service');
  assert.equal(cg.unified, undefined);
});

test('a pure v2 host has only the 0:: line, and paths may contain colons', () => {
  const cg = parseProcCgroup('0::/system.slice/a:b.service\n');
  assert.equal(cg.unified, '/system.slice/a:b.service');
  assert.deepEqual(cg.v1, []);
});

test('garbage lines are skipped and paths are normalised', () => {
  const cg = parseProcCgroup('nonsense\nx:memory:/a\n4:memory:relative\n5:pids:/a//b/\n0::/gone (deleted)\n');
  assert.deepEqual(cg.v1, [{ hierarchyID: 5, controllers: ['pids'], path: '/a/b' }]);
  assert.equal(cg.unified, '/gone');
});

test('normalizeCgroupPath refuses relative paths and ..', () => {
  assert.equal(normalizeCgroupPath('/'), '/');
  assert.equal(normalizeCgroupPath('/a/./b/'), '/a/b');
  assert.equal(normalizeCgroupPath('a/b'), undefined);
  assert.equal(normalizeCgroupPath('/a/../b'), undefined);
});
