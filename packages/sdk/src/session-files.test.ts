import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sluice } from './client.js';

test('file paths with ".", ".." or empty segments are refused before any request (URL parsing would resolve them to other endpoints)', async () => {
  const requests: string[] = [];
  const sluice = new Sluice({
    baseURL: 'http://sluice.test',
    fetch: async (url, init) => {
      requests.push(`${init?.method ?? 'GET'} ${String(url)}`);
      return new Response(null, { status: 204 });
    },
  });
  const files = sluice.session('mine').files;
  for (const bad of ['../../victim', 'a/../../victim', './x', 'a//b', '/etc/passwd', '', '/workspace/../x']) {
    await assert.rejects(files.delete(bad), TypeError, bad);
  }
  assert.deepEqual(requests, []);
  await files.delete('/workspace/dir/a b.txt');
  await files.delete('dir/..x');
  assert.deepEqual(requests, ['DELETE http://sluice.test/api/sessions/mine/files/dir/a%20b.txt', 'DELETE http://sluice.test/api/sessions/mine/files/dir/..x']);
});
