/**
 * Workspace mounts (workspace.ts) as root: each workspace is a tmpfs with its quota and the
 * session's uid, with a `nosymfollow` view for the server, and both go with removeWorkspace;
 * the mounts are made by the one mounter process, not by a process per mount (a spawn() of
 * the server costs a fork of all its memory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, Mounter, prepareDataDir, removeWorkspace } from './workspace.js';

const root = process.getuid?.() === 0;

/** The mount options of `target` in this process's mount table, or null when it is not a mount point. */
async function mountOf(target: string): Promise<{ fs: string; options: string[]; super: string[] } | null> {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (f[4] === target && sep > 0) return { fs: f[sep + 1] ?? '', options: (f[5] ?? '').split(','), super: (f[sep + 3] ?? '').split(',') };
  }
  return null;
}

test('workspaces are tmpfs mounts with their quota and uid, a nosymfollow view, made without a process per mount', { skip: !root && 'needs root (mounts)' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ws-mounts-'));
  // Every child process (spawn, execFile…) goes through this internal method of Node's.
  const proto = ChildProcess.prototype as unknown as { spawn(this: ChildProcess, ...args: unknown[]): unknown };
  const spawn = proto.spawn;
  let spawned = 0;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]): unknown {
    spawned++;
    return spawn.apply(this, args);
  };
  const made: string[] = [];
  try {
    const paths = await prepareDataDir(dir);
    for (let i = 0; i < 4; i++) made.push(await createWorkspace(paths, 7_900_000 + i, { sizeBytes: 8 * 1024 * 1024, inodes: 1000 }));
    for (const [i, ws] of made.entries()) {
      const m = await mountOf(ws);
      assert.ok(m, `${ws} is a mount point`);
      assert.equal(m.fs, 'tmpfs');
      assert.ok(m.options.includes('nosuid') && m.options.includes('nodev'), m.options.join(','));
      assert.ok(m.super.includes('size=8192k') && m.super.includes('nr_inodes=1000') && m.super.includes('mode=700'), m.super.join(','));
      assert.equal((await stat(ws)).uid, 7_900_000 + i);
      const view = await mountOf(join(ws, '..', 'view'));
      assert.ok(view, 'the server\'s view is a mount point');
      for (const o of ['nosymfollow', 'noexec', 'nosuid', 'nodev']) assert.ok(view.options.includes(o), `view: ${o} in ${view.options.join(',')}`);
    }
    for (const ws of made.splice(0)) {
      await removeWorkspace(ws);
      assert.equal(await mountOf(ws), null, `${ws} unmounted`);
      await assert.rejects(stat(ws), `${ws} removed`);
    }
    // Eight mounts and eight unmounts: at most the mounter itself was started.
    assert.ok(spawned <= 1, `${spawned} processes spawned for 8 mounts and 8 unmounts`);
  } finally {
    proto.spawn = spawn;
    for (const ws of made) await removeWorkspace(ws).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mount request that goes unanswered fails at its deadline, and the next request gets a new mounter', { timeout: 20_000 }, async () => {
  // Answers like the mounter, except that it never answers a request naming "hang".
  const script = String.raw`$| = 1; while (defined(my $len = <STDIN>)) { chomp $len; read(STDIN, my $b, $len); sleep 600 if $b =~ /hang/; print "ok\n"; }`;
  const m = new Mounter({ deadlineMs: 300, script });
  await m.request(['m', 'a'], 'first');
  const stuck = m.request(['m', 'hang'], 'stuck');
  const behind = m.request(['m', 'b'], 'behind');
  await assert.rejects(stuck, /stuck: no answer from the mounter in 300 ms/);
  await assert.rejects(behind, /behind: .*no answer from the mounter/);
  await m.request(['m', 'c'], 'after');
});
