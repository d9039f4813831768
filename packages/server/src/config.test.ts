import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(32);

test('per-tenant caps follow the server-wide ones unless given, and never exceed them', () => {
  const c = loadConfig({ SLUICE_MAX_RUNNING: '6', SLUICE_MAX_SESSIONS: '40' });
  assert.equal(c.maxRunning, 6);
  assert.equal(c.maxRunningPerTenant, 3);
  assert.equal(c.maxSessions, 40);
  assert.equal(c.maxSessionsPerTenant, 10);
  const d = loadConfig({ SLUICE_MAX_RUNNING: '4', SLUICE_MAX_RUNNING_PER_TENANT: '9', SLUICE_MAX_SESSIONS_PER_TENANT: '2' });
  assert.equal(d.maxRunningPerTenant, 4);
  assert.equal(d.maxSessionsPerTenant, 2);
  assert.throws(() => loadConfig({ SLUICE_MAX_RUNNING: '0' }), /maxRunning: expected a positive number/);
  assert.throws(() => loadConfig({ SLUICE_HEADERS_TIMEOUT: '40' }), /SLUICE_HEADERS_TIMEOUT: expected at most SLUICE_REQUEST_TIMEOUT \(30 s\), got 40/);
  assert.throws(() => loadConfig({ SLUICE_DRAIN_GRACE: '-1' }), /SLUICE_DRAIN_GRACE/);
});

test('API keys come from SLUICE_API_KEYS and SLUICE_API_KEYS_FILE together', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
  try {
    const file = join(dir, 'keys');
    await writeFile(file, `# ops\nbob:${KEY_B}\n`);
    const c = loadConfig({ SLUICE_API_KEYS: KEY_A, SLUICE_API_KEYS_FILE: file });
    assert.deepEqual(c.apiKeys, [
      { name: null, key: KEY_A },
      { name: 'bob', key: KEY_B },
    ]);
    assert.throws(() => loadConfig({ SLUICE_API_KEYS: `${KEY_A},${KEY_A}` }), /listed twice/);
    assert.throws(() => loadConfig({ SLUICE_API_KEYS_FILE: join(dir, 'missing') }), /SLUICE_API_KEYS_FILE: could not read/);
    await writeFile(file, '# nothing yet\n');
    assert.throws(() => loadConfig({ SLUICE_API_KEYS_FILE: file }), /holds no keys/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a non-loopback host needs keys or an explicit --insecure-no-auth', () => {
  assert.throws(() => loadConfig({ HOST: '0.0.0.0' }), /^Error: refusing to listen on 0\.0\.0\.0 without API keys/);
  assert.throws(() => loadConfig({}, { host: '::' }), /refusing to listen on ::/);
  assert.equal(loadConfig({ HOST: '0.0.0.0', SLUICE_API_KEYS: KEY_A }).host, '0.0.0.0');
  assert.equal(loadConfig({ HOST: '0.0.0.0', SLUICE_INSECURE_NO_AUTH: '1' }).insecureNoAuth, true);
  assert.equal(loadConfig({}, { host: '0.0.0.0', insecureNoAuth: true }).host, '0.0.0.0');
  assert.equal(loadConfig({ HOST: 'localhost' }).host, 'localhost');
});

test('session limit defaults and caps below what a sandbox needs to start are refused; so is a sub-second heartbeat', () => {
  assert.throws(() => loadConfig({ SLUICE_MEMORY: String(1024 * 1024) }), /SLUICE_MEMORY: expected an integer >= 16777216 \(no sandbox can start with less\), got 1048576/);
  assert.throws(() => loadConfig({ SLUICE_MAX_DISK: '4096' }), /SLUICE_MAX_DISK: expected an integer >= 1048576/);
  assert.throws(() => loadConfig({ SLUICE_INODES: '10' }), /SLUICE_INODES: expected an integer >= 64/);
  assert.throws(() => loadConfig({}, { processes: 1 }), /config processes: expected an integer >= 16/);
  assert.throws(() => loadConfig({}, { maxOpenFiles: 8 }), /config maxOpenFiles: expected an integer >= 32/);
  assert.throws(() => loadConfig({ SLUICE_HEARTBEAT: '0.001' }), /SLUICE_HEARTBEAT: expected at least 1 s, got 0\.001/);
  assert.equal(loadConfig({ SLUICE_MEMORY: String(16 * 1024 * 1024), SLUICE_HEARTBEAT: '1' }).memoryBytes, 16 * 1024 * 1024);
});

test('SLUICE_POOL_SIZE: 2 shells by default, 0 turns the pool off, bounded', () => {
  assert.equal(loadConfig({}).poolSize, 2);
  assert.equal(loadConfig({ SLUICE_POOL_SIZE: '0' }).poolSize, 0);
  assert.equal(loadConfig({ SLUICE_POOL_SIZE: '5' }).poolSize, 5);
  assert.throws(() => loadConfig({ SLUICE_POOL_SIZE: '-1' }), /SLUICE_POOL_SIZE: expected an integer from 0/);
  assert.throws(() => loadConfig({ SLUICE_POOL_SIZE: '1000' }), /SLUICE_POOL_SIZE/);
});
