import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.js';

test('SLUICE_LOG_DISK_BYTES sets the disk for spilled logs: 2 GiB by default, 0 keeps them in memory, negatives are refused', () => {
  assert.equal(loadConfig({}).logDiskBytes, 2 * 1024 * 1024 * 1024);
  assert.equal(loadConfig({ SLUICE_LOG_DISK_BYTES: '0' }).logDiskBytes, 0);
  assert.equal(loadConfig({ SLUICE_LOG_DISK_BYTES: '1048576' }).logDiskBytes, 1048576);
  assert.throws(() => loadConfig({ SLUICE_LOG_DISK_BYTES: '-1' }), /SLUICE_LOG_DISK_BYTES: expected bytes >= 0/);
  assert.throws(() => loadConfig({ SLUICE_LOG_DISK_BYTES: '1.5' }), /SLUICE_LOG_DISK_BYTES: expected an integer/);
});
