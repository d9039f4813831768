import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exposureProblem, isLoopbackHost } from './exposure.js';

test('loopback is localhost, 127.0.0.0/8 and ::1 in any spelling', () => {
  for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', 'fe80::1%eth0', '', '127.1']) {
    assert.equal(isLoopbackHost(h), false, h);
  }
});

test('without keys only loopback is allowed, unless the operator opts out explicitly', () => {
  assert.equal(exposureProblem({ host: '127.0.0.1', apiKeys: [], insecureNoAuth: false }), null);
  assert.equal(exposureProblem({ host: '0.0.0.0', apiKeys: [{}], insecureNoAuth: false }), null);
  assert.equal(exposureProblem({ host: '0.0.0.0', apiKeys: [], insecureNoAuth: true }), null);
  const problem = exposureProblem({ host: '0.0.0.0', apiKeys: [], insecureNoAuth: false });
  assert.match(problem ?? '', /^refusing to listen on 0\.0\.0\.0 without API keys/);
  assert.match(problem ?? '', /SLUICE_API_KEYS/);
  assert.match(problem ?? '', /--insecure-no-auth/);
});
