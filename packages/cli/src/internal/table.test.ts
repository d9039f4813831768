import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatTable } from './table.js';

test('columns are as wide as their widest cell; the last one is not padded', () => {
  assert.equal(formatTable(['ID', 'STATE'], [['a', 'idle'], ['longer-id', 'running']]), 'ID         STATE\na          idle\nlonger-id  running\n');
  assert.equal(formatTable(['ID'], []), 'ID\n');
});

test('bytes are shown in binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(20 * 1024 * 1024), '20 MiB');
});
