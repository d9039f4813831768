import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldLog } from '../execution/fold-log.js';
import { RedisLogError } from '../redis/redis-log.js';
import { EndsWhenLost } from './lost-log.js';
import { lostOnScan } from './lost-log.test-helper.js';

test('the buffered answer of a log Redis lost ends as the stream does: error, then done sandbox_lost (not a thrown 500)', async () => {
  const held = [
    JSON.stringify({ type: 'start', seq: 1, ts: Date.now() - 2000, execution_id: 'e', session_id: 's', language: 'python', mode: 'process' }),
    JSON.stringify({ type: 'stdout', seq: 2, ts: Date.now(), content: 'hi\n' }),
  ];
  const result = await foldLog(new EndsWhenLost(lostOnScan(held, new RedisLogError('lost', 'the log is gone'))));
  assert.equal(result.stdout, 'hi\n');
  assert.equal(result.exit_code, null);
  assert.equal(String(result.reason), 'sandbox_lost');
  assert.match(result.error?.message ?? '', /event log was lost/);
  assert.equal(result.error?.code, 'SANDBOX_UNAVAILABLE');
});

test('any other failure of the fold is still thrown', async () => {
  await assert.rejects(foldLog(new EndsWhenLost(lostOnScan([], new RedisLogError('unavailable', 'down')))), RedisLogError);
});
