import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate } from './negotiate.js';

test('Accept picks SSE, NDJSON or JSON, falling back when it names none of them', () => {
  assert.equal(negotiate(undefined, 'json'), 'json');
  assert.equal(negotiate('*/*', 'json'), 'json');
  assert.equal(negotiate('text/event-stream', 'json'), 'sse');
  assert.equal(negotiate('application/x-ndjson', 'json'), 'ndjson');
  assert.equal(negotiate('application/json, text/event-stream;q=0.5', 'sse'), 'json');
  assert.equal(negotiate('text/event-stream;q=0.2, application/x-ndjson;q=0.9', 'json'), 'ndjson');
  assert.equal(negotiate('text/html', 'sse'), 'sse');
});
