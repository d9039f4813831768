import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_STATUS, ErrorCode } from '@sluice/protocol';
import {
  ConnectionError,
  errorFromCode,
  errorFromResponse,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  parseRetryAfter,
  RateLimitedError,
  SessionBusyError,
  SluiceError,
  UnsupportedLanguageError,
} from './errors.js';

function response(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers });
}

test('every code of the table becomes its own class, with the status from the same table', () => {
  for (const code of Object.values(ErrorCode)) {
    const err = errorFromCode(code, 'm');
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, code);
    assert.equal(err.status, ERROR_STATUS[code]);
    assert.notEqual(err.constructor, SluiceError, `${code} has a subclass`);
    assert.equal(err.name, err.constructor.name, 'name is the class name');
  }
});

test('an error answer is rebuilt from its body, with Request-Id and Retry-After', async () => {
  const err = await errorFromResponse(
    response(409, JSON.stringify({ error: { code: 'SESSION_BUSY', message: 'queue full' } }), { 'Retry-After': '1', 'X-Request-Id': 'req-7' }),
    'POST /x',
  );
  assert.ok(err instanceof SessionBusyError);
  assert.equal(err.message, 'queue full');
  assert.equal(err.status, 409);
  assert.equal(err.requestID, 'req-7');
  assert.equal(err.retryAfter, 1);
  const rl = await errorFromResponse(response(429, JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'cap' } }), { 'retry-after': '5', 'request-id': 'r1' }), 'x');
  assert.ok(rl instanceof RateLimitedError);
  assert.equal(rl.retryAfter, 5);
  assert.equal(rl.requestID, 'r1');
});

test('an answer that is not Sluice JSON falls back to its status, keeping the text', async () => {
  const nf = await errorFromResponse(response(404, 'nope'), 'GET /a');
  assert.ok(nf instanceof NotFoundError);
  assert.match(nf.message, /GET \/a: HTTP 404.*nope/);
  const gateway = await errorFromResponse(response(502, '<html>bad gateway</html>'), 'GET /b');
  assert.ok(gateway instanceof InternalError);
  assert.equal(gateway.status, 502, 'the real status is kept');
  const teapot = await errorFromResponse(response(418, ''), 'GET /c');
  assert.ok(teapot instanceof InvalidRequestError);
  assert.equal(teapot.status, 418);
});

test('an unknown code from a newer server maps by status and keeps the code in the message', () => {
  const err = errorFromCode('QUOTA_EXCEEDED', 'over', { status: 422 });
  assert.ok(err instanceof UnsupportedLanguageError);
  assert.match(err.message, /QUOTA_EXCEEDED: over/);
});

test('client-side errors have no status', () => {
  const err = new ConnectionError('down');
  assert.equal(err.code, 'CONNECTION_ERROR');
  assert.equal(err.status, undefined);
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('7'), 7);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2030-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Tue, 01 Jan 2030 00:00:03 GMT', now), 3);
});
