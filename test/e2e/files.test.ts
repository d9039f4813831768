/**
 * The files API end to end: binary-safe upload and download, files shared with the code in
 * the sandbox both ways, listings, deletes, the size limit, unknown sessions.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { startServer, type TestServer } from './helpers/server.js';
import { doneOf, postJSON, stream, text } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_UID_BASE: String(randomInt(2_000_000, 3_000_000)), SLUICE_MAX_UPLOAD: String(1024 * 1024) });
});
after(async () => {
  await server.stop();
});

const files = (session: string, path = ''): string => `${server.url}/api/sessions/${session}/files${path === '' ? '' : `/${path}`}`;

async function createSession(id: string): Promise<void> {
  const res = await postJSON(`${server.url}/api/sessions`, { id });
  assert.equal(res.status, 201);
  await res.body?.cancel();
}

test('an uploaded binary file is used by code, and what the code writes downloads byte for byte', async () => {
  await createSession('files-1');
  const blob = randomBytes(300_000);
  const put = await fetch(files('files-1', 'in/blob.bin'), { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201);
  assert.deepEqual(await put.json(), { path: 'in/blob.bin', size: blob.length });

  const events = await stream(server.url, 'files-1', {
    code: [
      'import hashlib, os',
      'data = open("in/blob.bin", "rb").read()',
      'print(len(data), hashlib.sha256(data).hexdigest())',
      'print(os.stat("in/blob.bin").st_uid, os.stat("in").st_uid)',
      'open("in/reversed.bin", "wb").write(data[::-1])',
    ].join('\n'),
  });
  assert.equal(doneOf(events).exit_code, 0, text(events, 'stderr'));
  const { createHash } = await import('node:crypto');
  assert.equal(text(events, 'stdout'), `${blob.length} ${createHash('sha256').update(blob).digest('hex')}\n1000 1000\n`);

  const got = await fetch(files('files-1', 'in/reversed.bin'));
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'application/octet-stream');
  assert.equal(got.headers.get('x-content-type-options'), 'nosniff', 'a program\'s file is never sniffed into a script or a page');
  assert.equal(got.headers.get('content-length'), String(blob.length));
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(Buffer.from(blob).reverse()));
});

test('listing shows names, types and sizes; deleting a file or a directory removes it', async () => {
  await createSession('files-2');
  for (const p of ['a.txt', 'dir/b.txt', 'dir/sub/c.txt']) {
    const res = await fetch(files('files-2', p), { method: 'PUT', body: p });
    assert.equal(res.status, 201);
    await res.body?.cancel();
  }
  const root = (await (await fetch(files('files-2'))).json()) as { dir: string; entries: { name: string; type: string; size: number; path: string }[] };
  assert.equal(root.dir, '');
  assert.deepEqual(root.entries.map((e) => [e.name, e.type]), [['a.txt', 'file'], ['dir', 'directory']]);
  const sub = (await (await fetch(`${files('files-2')}?dir=dir`)).json()) as { entries: { path: string; size: number }[] };
  assert.deepEqual(sub.entries.map((e) => e.path), ['dir/b.txt', 'dir/sub']);
  assert.equal(sub.entries[0]?.size, 'dir/b.txt'.length);

  assert.equal((await fetch(files('files-2', 'a.txt'), { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(files('files-2', 'dir'), { method: 'DELETE' })).status, 204);
  const after = (await (await fetch(files('files-2'))).json()) as { entries: unknown[] };
  assert.deepEqual(after.entries, []);
  const gone = await fetch(files('files-2', 'a.txt'));
  assert.equal(gone.status, 404);
  assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
});

test('an upload over the limit is refused with 413 and nothing is written', async () => {
  await createSession('files-3');
  const res = await fetch(files('files-3', 'big.bin'), { method: 'PUT', body: randomBytes(2 * 1024 * 1024) });
  assert.equal(res.status, 413);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'PAYLOAD_TOO_LARGE');
  assert.match(body.error.message, /1048576 bytes \(SLUICE_MAX_UPLOAD\)/);
  assert.equal((await fetch(files('files-3', 'big.bin'))).status, 404);
});

test('the files of an unknown session are NOT_FOUND and asking does not create it', async () => {
  const res = await fetch(files('no-such-session', 'x.txt'));
  assert.equal(res.status, 404);
  await res.body?.cancel();
  assert.equal((await fetch(`${server.url}/api/sessions/no-such-session`)).status, 404);
});

test('a workspace that is full answers 413 on upload', async () => {
  const res = await postJSON(`${server.url}/api/sessions`, { id: 'files-full', limits: { disk_bytes: 1024 * 1024 } });
  assert.equal(res.status, 201);
  await res.body?.cancel();
  const ok = await fetch(files('files-full', 'one.bin'), { method: 'PUT', body: randomBytes(700_000) });
  assert.equal(ok.status, 201);
  await ok.body?.cancel();
  const full = await fetch(files('files-full', 'two.bin'), { method: 'PUT', body: randomBytes(700_000) });
  assert.equal(full.status, 413);
  assert.match(((await full.json()) as { error: { message: string } }).error.message, /workspace is full/);
});
