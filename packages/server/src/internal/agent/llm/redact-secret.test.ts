import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactSecret } from './redact-secret.js';

test('every spelling of the secret is redacted; no secret leaves text alone', () => {
  const key = 'sk-te"st/key';
  const body = `raw ${key} json ${JSON.stringify(key)} url ${encodeURIComponent(key)}`;
  const out = redactSecret(body, key);
  assert.equal(out.includes('sk-te'), false, out);
  assert.equal(out.split('[REDACTED]').length - 1, 3);
  assert.equal(redactSecret('abc', ''), 'abc');
  assert.equal(redactSecret('abc', undefined), 'abc');
});
