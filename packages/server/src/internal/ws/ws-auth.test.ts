import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authFailureReason, keyFromProtocols, selectProtocol, upgradeCredentials } from './ws-auth.js';

const KEY = 'k3y+with/odd=chars-0123456789';
const encoded = Buffer.from(KEY).toString('base64url');

test('the key travels base64url in a sluice.auth subprotocol; the server selects only "sluice"', () => {
  assert.equal(keyFromProtocols(`sluice, sluice.auth.${encoded}`), KEY);
  assert.equal(keyFromProtocols('sluice'), null);
  assert.equal(keyFromProtocols(undefined), null);
  assert.equal(keyFromProtocols('sluice, sluice.auth.not=valid'), '');
  assert.equal(selectProtocol(new Set(['sluice', `sluice.auth.${encoded}`])), 'sluice');
  assert.equal(selectProtocol(new Set(['other'])), false);
});

test('the Authorization header wins over the subprotocol', () => {
  assert.deepEqual(upgradeCredentials({ authorization: 'Bearer a', 'sec-websocket-protocol': `sluice, sluice.auth.${encoded}` }), {
    source: 'header',
    authorization: 'Bearer a',
  });
  assert.deepEqual(upgradeCredentials({ 'sec-websocket-protocol': `sluice, sluice.auth.${encoded}` }), { source: 'subprotocol', authorization: `Bearer ${KEY}` });
  assert.deepEqual(upgradeCredentials({}), { source: 'none' });
});

test('refusal reasons never contain the key', () => {
  const creds = upgradeCredentials({ 'sec-websocket-protocol': `sluice, sluice.auth.${encoded}` });
  const reason = authFailureReason(creds, 'Authorization: this API key is not valid');
  assert.ok(!reason.includes(KEY) && !reason.includes(encoded));
  assert.match(reason, /sluice\.auth subprotocol/);
  assert.match(authFailureReason({ source: 'none' }, ''), /Authorization: Bearer <key>/);
});
