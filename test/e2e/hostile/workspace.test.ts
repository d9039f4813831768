/**
 * Workspaces under hostile programs: each session's workspace is its own tmpfs with a size and
 * an inode cap, so disk and inode bombs end in ENOSPC inside the sandbox and never reach the
 * host's disk; and the server's view of it does not follow symlinks the sandbox planted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFile, readdir, realpath, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/host.js';
import { doneOf, stream, text } from '../helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_UID_BASE: String(randomInt(2_000_000, 3_000_000)) });
});
after(async () => {
  await server.stop();
});

async function py(session: string, code: string): Promise<{ stdout: string; stderr: string; exit: number | null }> {
  const events = await stream(server.url, session, { code, timeout: 30 });
  return { stdout: text(events, 'stdout'), stderr: text(events, 'stderr'), exit: doneOf(events).exit_code };
}

test('the workspace is a size-capped tmpfs: a disk bomb ends in ENOSPC and the host disk is untouched', async () => {
  const hostBefore = await statfs(server.dataDir);
  const bystander = stream(server.url, 'ws-bystander', { code: 'import time\nfor i in range(5):\n    print(i)\n    time.sleep(0.1)' });
  const r = await py(
    'ws-disk',
    [
      'import errno, os',
      '# Many files of 32 MiB each, so the 64 MiB file-size rlimit is not what stops it.',
      'n = 0',
      'try:',
      '    while True:',
      '        with open(f"fill{n // 32}", "ab") as f:',
      '            f.write(b"x" * (1 << 20)); n += 1',
      'except OSError as e:',
      '    print(errno.errorcode[e.errno], n)',
      'for name in os.listdir("."):',
      '    os.remove(name)',
      'st = os.statvfs("/workspace")',
      'print("size", st.f_blocks * st.f_frsize)',
    ].join('\n'),
  );
  assert.equal(r.exit, 0, r.stderr);
  const m = /^ENOSPC (\d+)$/m.exec(r.stdout);
  assert.ok(m, `expected ENOSPC, got ${r.stdout}`);
  assert.ok(Number(m[1]) <= 256, `wrote ${m[1]} MiB before ENOSPC`);
  assert.match(r.stdout, /^size 268435456$/m);
  const hostAfter = await statfs(server.dataDir);
  // The host filesystem did not absorb the bomb (allow for unrelated activity on the machine).
  assert.ok(hostBefore.bavail * hostBefore.bsize - hostAfter.bavail * hostAfter.bsize < 64 * 1024 * 1024);
  assert.equal(text(await bystander, 'stdout'), '0\n1\n2\n3\n4\n');
});

test('an inode bomb ends in ENOSPC at the inode cap', async () => {
  const r = await py(
    'ws-inodes',
    [
      'import errno, os, shutil',
      'os.makedirs("many", exist_ok=True)',
      'n = 0',
      'try:',
      '    while True:',
      '        open(f"many/{n}", "w").close(); n += 1',
      'except OSError as e:',
      '    print(errno.errorcode[e.errno], n)',
      'shutil.rmtree("many")',
    ].join('\n'),
  );
  assert.equal(r.exit, 0, r.stderr);
  const m = /^ENOSPC (\d+)$/m.exec(r.stdout);
  assert.ok(m, `expected ENOSPC, got ${r.stdout}`);
  assert.ok(Number(m[1]) > 1000 && Number(m[1]) < 16384, `created ${m[1]} files`);
});

test("the server's view of a workspace refuses a planted symlink to a host file (ELOOP)", async () => {
  const r = await py('ws-symlink', 'import os\nos.symlink("/etc/shadow", "leak")\nos.symlink("/etc", "etcdir")\nopen("plain.txt", "w").write("hello")\nprint("planted")');
  assert.equal(r.stdout, 'planted\n', r.stderr);
  const bases = await readdir(join(server.dataDir, 'workspaces'));
  let checked = 0;
  for (const b of bases) {
    const view = join(server.dataDir, 'workspaces', b, 'view');
    let plain: string;
    try {
      plain = await readFile(join(view, 'plain.txt'), 'utf8');
    } catch {
      continue;
    }
    assert.equal(plain, 'hello');
    await assert.rejects(readFile(join(view, 'leak')), (err: NodeJS.ErrnoException) => err.code === 'ELOOP');
    await assert.rejects(readFile(join(view, 'etcdir', 'shadow')), (err: NodeJS.ErrnoException) => err.code === 'ELOOP');
    checked++;
  }
  assert.equal(checked, 1, 'exactly one workspace holds the planted files');
});

test('deleting a session unmounts and removes its workspace', async () => {
  await py('ws-delete', 'open("ws-delete-marker", "w").write("x")');
  // This session's workspace (a pooled one is a link into pool/): the pool may mount others meanwhile.
  let own: string | null = null;
  for (const b of await readdir(join(server.dataDir, 'workspaces'))) {
    const dir = join(server.dataDir, 'workspaces', b);
    if (await stat(join(dir, 'view', 'ws-delete-marker')).then(() => true, () => false)) own = await realpath(dir);
  }
  assert.ok(own, "the session's workspace holds its file");
  const ownMounts = async (): Promise<number> =>
    (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => {
      const target = l.split(' ')[1] ?? '';
      return target === own || target.startsWith(`${own}/`);
    }).length;
  assert.equal(await ownMounts(), 2, 'the tmpfs and its nosymfollow view');
  const res = await fetch(`${server.url}/api/sessions/ws-delete`, { method: 'DELETE' });
  assert.equal(res.status, 204);
  assert.equal(await ownMounts(), 0, 'the tmpfs and its nosymfollow view are unmounted');
  const dir = own;
  await waitFor('the workspace removed', 10_000, async () => ((await stat(dir).then(() => true, () => false)) ? undefined : true));
});
