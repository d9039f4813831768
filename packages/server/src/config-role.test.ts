import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { loadConfig, workerURL } from './config.js';

const REDIS = 'redis://127.0.0.1:6379';

test('SLUICE_ROLE is all by default and takes api or worker only with SLUICE_REDIS_URL', () => {
  assert.equal(loadConfig({}).role, 'all');
  assert.equal(loadConfig({ SLUICE_ROLE: 'api', SLUICE_REDIS_URL: REDIS }).role, 'api');
  assert.equal(loadConfig({ SLUICE_ROLE: 'worker', SLUICE_REDIS_URL: REDIS }).role, 'worker');
  assert.equal(loadConfig({ SLUICE_ROLE: 'all', SLUICE_REDIS_URL: REDIS }).role, 'all');
  assert.throws(() => loadConfig({ SLUICE_ROLE: 'api' }), /SLUICE_ROLE \(--role\) api: needs SLUICE_REDIS_URL/);
  assert.throws(() => loadConfig({}, { role: 'worker' }), /worker: needs SLUICE_REDIS_URL/);
  assert.throws(() => loadConfig({ SLUICE_ROLE: 'primary', SLUICE_REDIS_URL: REDIS }), /SLUICE_ROLE \(--role\): expected all, api, worker, got "primary"/);
});

test('SLUICE_WORKER_URL must be an http(s) URL; without it the URL comes from HOST and PORT', () => {
  assert.throws(() => loadConfig({ SLUICE_WORKER_URL: 'ftp://x' }), /SLUICE_WORKER_URL: expected an http\(s\) URL/);
  assert.throws(() => loadConfig({ SLUICE_WORKER_URL: 'not a url' }), /SLUICE_WORKER_URL/);
  const given = loadConfig({ SLUICE_WORKER_URL: 'http://10.0.0.5:9000/', SLUICE_ROLE: 'worker', SLUICE_REDIS_URL: REDIS });
  assert.equal(workerURL(given), 'http://10.0.0.5:9000');
  assert.equal(workerURL(loadConfig({ PORT: '9001' })), 'http://127.0.0.1:9001');
  // A wildcard address cannot be dialled: the machine's name stands in; the port listened on wins over PORT=0.
  assert.equal(workerURL({ workerURL: '', host: '0.0.0.0', port: 0 }, 8123), `http://${hostname()}:8123`);
  assert.equal(workerURL({ workerURL: '', host: '::1', port: 80 }), 'http://[::1]:80');
});
