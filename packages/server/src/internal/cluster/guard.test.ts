/**
 * guard (redis-backend.ts): a backend call that fails after it sent a command that runs code
 * answers that command's OutcomeUnknown (503 without Retry-After, naming the execution), never a
 * "retry": a retry would run the code twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api-error.js';
import { OutcomeUnknown } from '../redis/inbox.js';
import { guard } from './redis-backend.js';

const unknown = (): OutcomeUnknown => new OutcomeUnknown('the run started', 'exec-1');

test('before anything is sent, a Redis failure is a retryable SANDBOX_UNAVAILABLE', async () => {
  await assert.rejects(
    guard(async () => {
      throw new Error('connection refused');
    }),
    (err: unknown) => err instanceof ApiError && !(err instanceof OutcomeUnknown) && err.code === 'SANDBOX_UNAVAILABLE' && err.retryAfter === 5,
  );
});

test('a Redis failure after the command was sent answers its OutcomeUnknown', async () => {
  await assert.rejects(
    guard(async (_deadline, state) => {
      state.sent = unknown;
      throw new Error('connection reset');
    }),
    (err: unknown) => err instanceof OutcomeUnknown && err.executionID === 'exec-1' && err.retryAfter === undefined,
  );
});

test('a call left waiting past its bound after the command was sent answers its OutcomeUnknown', async () => {
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  try {
    await assert.rejects(
      guard(async (_deadline, state) => {
        state.sent = unknown;
        await held;
      }, 50),
      (err: unknown) => err instanceof OutcomeUnknown && err.executionID === 'exec-1',
    );
  } finally {
    release();
  }
});
