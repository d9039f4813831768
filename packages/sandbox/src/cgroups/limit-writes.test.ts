import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CgroupError } from './cgroup-error.js';
import type { CgroupSupportV1, CgroupSupportV2 } from './cgroup-support.js';
import { limitWrites, unenforcedLimits, validateLimits } from './limit-writes.js';

const v1: CgroupSupportV1 = {
  version: 'v1',
  parentName: 'sluice',
  hierarchies: [
    { controllers: ['pids'], mountPoint: '/cg/pids', parentDir: '/cg/pids/sluice', nested: false },
    { controllers: ['memory'], mountPoint: '/cg/memory', parentDir: '/cg/memory/sluice', nested: false },
    { controllers: ['cpu'], mountPoint: '/cg/cpu', parentDir: '/cg/cpu/sluice', nested: false },
    { controllers: ['cpuacct'], mountPoint: '/cg/cpuacct', parentDir: '/cg/cpuacct/sluice', nested: false },
  ],
  controllers: ['memory', 'pids', 'cpu', 'cpuacct'],
  missing: [],
  notes: [],
};
const v2: CgroupSupportV2 = {
  version: 'v2',
  parentName: 'sluice',
  mountPoint: '/cg',
  parentDir: '/cg/sluice',
  nested: false,
  controllers: ['memory', 'pids', 'cpu', 'cpuacct'],
  missing: [],
  notes: [],
};
const limits = { memoryBytes: 64 * 1024 * 1024, pids: 32, cpuQuota: 0.25 };

test('v1: memory limit before memsw (which may not be below it), period before quota', () => {
  assert.deepEqual(limitWrites(v1, 'e', limits), [
    { file: '/cg/memory/sluice/e/memory.limit_in_bytes', value: '67108864', optional: false },
    { file: '/cg/memory/sluice/e/memory.memsw.limit_in_bytes', value: '67108864', optional: true },
    { file: '/cg/pids/sluice/e/pids.max', value: '32', optional: false },
    { file: '/cg/cpu/sluice/e/cpu.cfs_period_us', value: '100000', optional: false },
    { file: '/cg/cpu/sluice/e/cpu.cfs_quota_us', value: '25000', optional: false },
  ]);
});

test('v2: memory.max with no swap on top, pids.max, cpu.max', () => {
  assert.deepEqual(limitWrites(v2, 'e', limits), [
    { file: '/cg/sluice/e/memory.max', value: '67108864', optional: false },
    { file: '/cg/sluice/e/memory.swap.max', value: '0', optional: true },
    { file: '/cg/sluice/e/pids.max', value: '32', optional: false },
    { file: '/cg/sluice/e/cpu.max', value: '25000 100000', optional: false },
  ]);
});

test('omitted limits write nothing; limits without their controller are reported unenforced', () => {
  assert.deepEqual(limitWrites(v2, 'e', {}), []);
  const noCPU: CgroupSupportV2 = { ...v2, controllers: ['memory', 'pids', 'cpuacct'] };
  assert.deepEqual(limitWrites(noCPU, 'e', { cpuQuota: 1 }), []);
  assert.deepEqual(unenforcedLimits(noCPU, limits), ['cpuQuota']);
  assert.deepEqual(unenforcedLimits(v1, limits), []);
});

test('the CPU quota never goes below the kernel minimum of 1 ms per period', () => {
  assert.deepEqual(limitWrites(v2, 'e', { cpuQuota: 0.0101 }), [{ file: '/cg/sluice/e/cpu.max', value: '1010 100000', optional: false }]);
  assert.deepEqual(limitWrites(v2, 'e', { cpuQuota: 2 }), [{ file: '/cg/sluice/e/cpu.max', value: '200000 100000', optional: false }]);
});

test('bad limits are refused with the option, what was expected and what arrived', () => {
  const cases: [Parameters<typeof validateLimits>[0], RegExp][] = [
    [{ memoryBytes: 64 }, /memoryBytes must be an integer number of bytes ≥ 4194304 .*got 64$/],
    [{ memoryBytes: 1.5e9 + 0.5 }, /memoryBytes/],
    [{ pids: 0 }, /pids must be an integer ≥ 1; got 0/],
    [{ pids: Number.NaN }, /pids .*got NaN/],
    [{ cpuQuota: 0 }, /cpuQuota must be a fraction of one CPU between 0.01 and 1024 .*got 0/],
    [{ cpuQuota: Number.POSITIVE_INFINITY }, /cpuQuota/],
  ];
  for (const [l, re] of cases) {
    assert.throws(() => validateLimits(l), (err: unknown) => err instanceof CgroupError && err.code === 'EINVAL' && re.test(err.message));
  }
  assert.throws(() => limitWrites(v2, 'e', { pids: -1 }), CgroupError);
});
