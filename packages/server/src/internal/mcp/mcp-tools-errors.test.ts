import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { ApiError } from '../api-error.js';
import { progressTotal, resourceError } from './mcp-tools.js';

test('progressTotal: progress/total is the fraction; no total without a percent > 0 or when it is not finite', () => {
  assert.equal(progressTotal(3, 50), 6);
  assert.equal(progressTotal(3, undefined), undefined);
  assert.equal(progressTotal(3, 0), undefined);
  assert.equal(progressTotal(3, -5), undefined);
  // A subnormal percent: 300 / 1e-320 overflows to Infinity, which JSON would send as null.
  assert.equal(progressTotal(3, 1e-320), undefined);
});

test('resourceError: a file being written is not a bad argument; a missing one is -32002, a bad path InvalidParams', () => {
  const busy = resourceError(new ApiError('SESSION_BUSY', 'path: a shrank from 10 to 5 bytes while it was read'));
  assert.equal(busy.code, ErrorCode.InternalError);
  assert.match(busy.message, /shrank.*\(SESSION_BUSY\)$/);
  assert.equal(resourceError(new ApiError('NOT_FOUND', 'x')).code, -32002);
  assert.equal(resourceError(new ApiError('INVALID_REQUEST', 'x')).code, ErrorCode.InvalidParams);
  assert.equal(resourceError(new ApiError('FORBIDDEN', 'x')).code, ErrorCode.InvalidParams);
});
