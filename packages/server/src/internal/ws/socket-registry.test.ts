import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketRegistry, socketCaps } from './socket-registry.js';
import { closeReason } from './close-reason.js';

test('caps derive from the connection limit: half for sockets, a quarter of those per tenant', () => {
  assert.deepEqual(socketCaps(1024), { maxSockets: 512, maxSocketsPerTenant: 128 });
  assert.deepEqual(socketCaps(16), { maxSockets: 8, maxSocketsPerTenant: 2 });
  assert.deepEqual(socketCaps(1), { maxSockets: 1, maxSocketsPerTenant: 1 });
});

test('admission counts per tenant and server-wide; closing a socket frees its place', () => {
  const reg = new SocketRegistry<{ owner: string | null }>(3, 2);
  const a1 = { owner: 'a' };
  const a2 = { owner: 'a' };
  reg.add(a1);
  reg.add(a2);
  assert.match(reg.admissionProblem('a') ?? '', /this API key has 2 WebSockets open, its maximum/);
  assert.equal(reg.admissionProblem('b'), null);
  reg.add({ owner: null });
  assert.match(reg.admissionProblem('b') ?? '', /the server has 3 WebSockets open/);
  reg.delete(a1);
  reg.delete(a1);
  assert.equal(reg.size, 2);
  assert.equal(reg.admissionProblem('a'), null);
});

test('close reasons fit a close frame (123 bytes) without splitting a character', () => {
  assert.equal(closeReason('short'), 'short');
  const long = closeReason('é'.repeat(100));
  assert.ok(Buffer.byteLength(long) <= 123);
  assert.ok(long.endsWith('…'));
  assert.ok(!long.includes('\uFFFD'));
});
