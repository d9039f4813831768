import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api-error.js';
import { segments } from './session-tools.js';

test('segments: a dotfile keeps its dot; only a leading "." segment is dropped', () => {
  assert.deepEqual(segments('.env', 'path'), ['.env']);
  assert.deepEqual(segments('/workspace/.env', 'path'), ['.env']);
  assert.deepEqual(segments('.cfg/x', 'path'), ['.cfg', 'x']);
  assert.deepEqual(segments('./.gitignore', 'path'), ['.gitignore']);
  assert.deepEqual(segments('./a/b', 'path'), ['a', 'b']);
  assert.deepEqual(segments('.', 'dir'), []);
  assert.deepEqual(segments('/workspace', 'dir'), []);
  assert.deepEqual(segments('', 'dir'), []);
});

test('segments: ".." is refused, not rewritten into the workspace', () => {
  for (const p of ['..', '../x', '/workspace/../x', './../x', 'a/../../x']) {
    assert.throws(() => segments(p, 'path'), (err: unknown) => err instanceof ApiError && err.code === 'INVALID_REQUEST' && /"\.\." would leave the workspace/.test(err.message), p);
  }
});
