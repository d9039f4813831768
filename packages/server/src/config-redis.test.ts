import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.js';

test('SLUICE_REDIS_URL is optional (none by default), takes redis:// and rediss:// URLs, and refuses others without echoing a password', () => {
  assert.equal(loadConfig({}).redisURL, '');
  assert.equal(loadConfig({ SLUICE_REDIS_URL: 'redis://127.0.0.1:6379/0' }).redisURL, 'redis://127.0.0.1:6379/0');
  assert.equal(loadConfig({ SLUICE_REDIS_URL: 'rediss://user:pw@redis.internal' }).redisURL, 'rediss://user:pw@redis.internal');
  assert.throws(() => loadConfig({ SLUICE_REDIS_URL: 'http://127.0.0.1:6379' }), /SLUICE_REDIS_URL: expected redis:\/\/.*got scheme "http:"/);
  assert.throws(
    () => loadConfig({ SLUICE_REDIS_URL: 'not a url with secret-pw' }),
    (err: unknown) => err instanceof Error && /SLUICE_REDIS_URL: expected redis:\/\//.test(err.message) && !err.message.includes('secret-pw'),
  );
});
