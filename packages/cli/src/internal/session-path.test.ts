import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIError } from './cli-error.js';
import { parseSessionPath } from './session-path.js';

test('SESSION:PATH splits at the first colon; the path may hold colons', () => {
  assert.deepEqual(parseSessionPath('s1:data/in.csv', 'REMOTE'), { session: 's1', path: 'data/in.csv' });
  assert.deepEqual(parseSessionPath('s1:a:b', 'REMOTE'), { session: 's1', path: 'a:b' });
  assert.deepEqual(parseSessionPath('s1:', 'REMOTE'), { session: 's1', path: '' });
});

test('paths as the program sees them (/workspace/…) are made relative', () => {
  assert.deepEqual(parseSessionPath('s1:/workspace/out.png', 'REMOTE'), { session: 's1', path: 'out.png' });
  assert.deepEqual(parseSessionPath('s1:/workspace', 'REMOTE'), { session: 's1', path: '' });
  assert.deepEqual(parseSessionPath('s1:/workspaces/x', 'REMOTE'), { session: 's1', path: 'workspaces/x' });
});

test('no session part is a usage error that names the argument and shows the form', () => {
  for (const bad of ['file.txt', ':file.txt']) {
    assert.throws(
      () => parseSessionPath(bad, 'REMOTE'),
      (err: unknown) => err instanceof CLIError && err.exitCode === 2 && /REMOTE: expected SESSION:PATH/.test(err.message),
    );
  }
});
