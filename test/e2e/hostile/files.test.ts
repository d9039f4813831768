/**
 * The files API against a hostile workspace (docs/files.md): links planted by the
 * code to host files or directories, FIFOs and devices, and every path-traversal spelling.
 * Nothing outside the workspace is ever served, nothing hangs, and a well-behaved session
 * beside it keeps streaming.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.js';
import { doneOf, stream, text } from '../helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_UID_BASE: String(randomInt(2_000_000, 3_000_000)) });
  await plant();
});
after(async () => {
  await server.stop();
});

/** GET with the path sent exactly as given (fetch and URL would normalise `..`). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} hung`)));
    req.on('error', reject);
    req.end();
  });
}

/** The code plants links to host files, a link climbing out, and a FIFO. */
async function plant(): Promise<void> {
  const events = await stream(server.url, 'plant', {
    language: 'bash',
    code: [
      'ln -s /etc/shadow leak',
      'ln -s /etc etcdir',
      'ln -s / rootdir',
      'mkdir -p real && echo inside > real/ok.txt',
      'ln -s ../../../../../../etc/passwd real/up',
      'mkfifo pipe',
      'echo planted',
    ].join('\n'),
  });
  assert.equal(text(events, 'stdout'), 'planted\n', text(events, 'stderr'));
}

test('links planted by the code are refused (403), never followed to host files', async () => {
  const bystander = stream(server.url, 'files-bystander', { code: 'import time\nfor i in range(5):\n    print(i)\n    time.sleep(0.1)' });
  for (const p of ['leak', 'etcdir/shadow', 'etcdir/passwd', 'rootdir/etc/shadow', 'real/up']) {
    const r = await rawGet(`/api/sessions/plant/files/${p}`);
    assert.equal(r.status, 403, `${p}: ${r.body}`);
    const body = JSON.parse(r.body) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'FORBIDDEN');
    assert.match(body.error.message, /symbolic link/);
    assert.ok(!r.body.includes('root:'), `${p} leaked a host file`);
  }
  // Writing through a planted link is refused too, and the host file is untouched.
  const put = await fetch(`${server.url}/api/sessions/plant/files/etcdir/sluice-was-here`, { method: 'PUT', body: 'x' });
  assert.equal(put.status, 403);
  await put.body?.cancel();
  const listing = await rawGet('/api/sessions/plant/files?dir=etcdir');
  assert.equal(listing.status, 403, listing.body);
  const ok = await rawGet('/api/sessions/plant/files/real/ok.txt');
  assert.deepEqual(ok, { status: 200, body: 'inside\n' });
  const by = await bystander;
  assert.equal(text(by, 'stdout'), '0\n1\n2\n3\n4\n');
  assert.equal(doneOf(by).reason, 'exited');
});

test('a FIFO is refused at once instead of hanging the server', async () => {
  const t0 = performance.now();
  const r = await rawGet('/api/sessions/plant/files/pipe');
  assert.equal(r.status, 403);
  assert.match(r.body, /not a regular file/);
  assert.ok(performance.now() - t0 < 2000);
});

test('every path-traversal spelling is refused with 400 (or never reaches the files route)', async () => {
  const spellings = [
    '%2e%2e/%2e%2e/etc/passwd',
    '%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
    'real/%2e%2e/%2e%2e/etc/passwd',
    '..%2f..%2fetc%2fpasswd',
    '%2fetc%2fpasswd',
    'a%00b',
    '..%5c..%5cetc%5cpasswd',
    `${'a/'.repeat(2100)}x`,
  ];
  for (const s of spellings) {
    const r = await rawGet(`/api/sessions/plant/files/${s}`);
    assert.equal(r.status, 400, `${s}: ${r.status} ${r.body.slice(0, 200)}`);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'INVALID_REQUEST');
    assert.ok(!r.body.includes('root:'));
  }
  // Raw `..` segments are resolved by the HTTP layer before routing: they never reach a file.
  for (const s of ['../../../../etc/passwd', 'real/../../../etc/passwd']) {
    const r = await rawGet(`/api/sessions/plant/files/${s}`);
    assert.ok(r.status === 400 || r.status === 404, `${s}: ${r.status}`);
    assert.ok(!r.body.includes('root:'));
  }
  // Look-alikes are ordinary names: not found, not a way out.
  const lookalike = await rawGet(`/api/sessions/plant/files/${encodeURIComponent('\uFF0E\uFF0E')}/${encodeURIComponent('\uFF0E\uFF0E')}/etc/passwd`);
  assert.equal(lookalike.status, 404);
});
