import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCgroupMounts, unescapeMountField } from './cgroup-mounts.js';

test('v1 hierarchies, a hybrid cgroup2 mount and other filesystems are told apart', () => {
  const text = [
    'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
    'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
    'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
    'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
    'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0',
    'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0',
    'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
  ].join('\n');
  assert.deepEqual(parseCgroupMounts(text), [
    { mountPoint: '/sys/fs/cgroup/cpu', version: 'v1', controllers: ['cpu'], readOnly: false },
    { mountPoint: '/sys/fs/cgroup/memory', version: 'v1', controllers: ['memory'], readOnly: false },
    { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', version: 'v1', controllers: ['cpu', 'cpuacct'], readOnly: false },
    { mountPoint: '/sys/fs/cgroup/systemd', version: 'v1', controllers: [], readOnly: false },
    { mountPoint: '/sys/fs/cgroup/unified', version: 'v2', controllers: [], readOnly: false },
  ]);
});

test('a read-only cgroup2 mount (a default container) is marked so', () => {
  const [m] = parseCgroupMounts('cgroup /sys/fs/cgroup cgroup2 ro,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n');
  assert.deepEqual(m, { mountPoint: '/sys/fs/cgroup', version: 'v2', controllers: [], readOnly: true });
});

test('octal escapes in mount points are decoded', () => {
  assert.equal(unescapeMountField('/mnt/my\\040cgroups\\011x\\134y'), '/mnt/my cgroups\tx\\y');
  const [m] = parseCgroupMounts('cgroup2 /mnt/cg\\0402 cgroup2 rw 0 0');
  assert.equal(m?.mountPoint, '/mnt/cg 2');
});
