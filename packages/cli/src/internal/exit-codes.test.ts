import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, exitCodeForDone, exitCodeForError } from './exit-codes.js';

test('a program that exited, or died of a signal, passes its own status through', () => {
  assert.equal(exitCodeForDone({ reason: 'exited', exit_code: 3 }), 3);
  assert.equal(exitCodeForDone({ reason: 'exited', exit_code: 0 }), 0);
  assert.equal(exitCodeForDone({ reason: 'signaled', exit_code: 139, signal: 'SIGSEGV' }), 139);
  assert.equal(exitCodeForDone({ reason: 'signaled', exit_code: null, signal: 'SIGKILL' }), 137);
});

test('every other ending has its own status', () => {
  assert.equal(exitCodeForDone({ reason: 'timeout', exit_code: 143 }), 124);
  assert.equal(exitCodeForDone({ reason: 'cancelled', exit_code: 130 }), 130);
  assert.equal(exitCodeForDone({ reason: 'memory_limit', exit_code: 137 }), 137);
  assert.equal(exitCodeForDone({ reason: 'output_limit', exit_code: 137 }), 153);
  assert.equal(exitCodeForDone({ reason: 'error', exit_code: null }, 'SANDBOX_UNAVAILABLE'), 69);
  assert.equal(exitCodeForDone({ reason: 'error', exit_code: null }), ExitCode.SOFTWARE);
});

test('error codes map to sysexits; unknown ones are the server\'s bug', () => {
  assert.equal(exitCodeForError('INVALID_REQUEST'), 65);
  assert.equal(exitCodeForError('NOT_FOUND'), 66);
  assert.equal(exitCodeForError('CONNECTION_ERROR'), 69);
  assert.equal(exitCodeForError('INTERNAL'), 70);
  assert.equal(exitCodeForError('SESSION_BUSY'), 75);
  assert.equal(exitCodeForError('UNAUTHORIZED'), 77);
  assert.equal(exitCodeForError('SOMETHING_NEW'), 70);
});
