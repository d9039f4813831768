/**
 * programStarted (signal-namespace.ts) on real process trees shaped like a sandbox's: an init,
 * a reporter under it, and the reporter's child, either still the reporter's own fork or the
 * exec'd program.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { programStarted } from './signal-namespace.js';

/** An init (sh) whose one child is a Perl "reporter" running `child` in its fork. */
function tree(child: string): ChildProcess {
  const perl = `if (my $p = fork) { waitpid($p, 0) } else { ${child} }`;
  return spawn('/bin/sh', ['-c', `/usr/bin/perl -e '${perl}' & wait`], { stdio: 'ignore', detached: true });
}

/** Kills the whole tree (its own process group). */
function end(init: ChildProcess): void {
  try {
    process.kill(-(init.pid ?? 0), 'SIGKILL');
  } catch {
    // Already gone.
  }
}

async function descendants(pid: number): Promise<number> {
  const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(/\s+/).filter(Boolean).map(Number);
  let n = kids.length;
  for (const k of kids) n += await descendants(k);
  return n;
}

/** Waits (with a deadline) until init has a reporter and the reporter a child, and `ready` holds. */
async function settled(init: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!((await descendants(init.pid ?? 0)) >= 2 && (await ready()))) {
    if (Date.now() > deadline) throw new Error('the process tree did not form in 10 s');
    await sleep(20);
  }
}

test('a reporter whose child is still its own fork (not exec\'d yet) has no program started', async () => {
  const init = tree('sleep 30');
  try {
    await settled(init, async () => true);
    assert.equal(await programStarted(init.pid ?? 0), false);
  } finally {
    end(init);
  }
});

test('a reporter whose child exec\'d the program has it started', async () => {
  const init = tree('exec "/bin/sleep", "30"');
  try {
    // The fork exists before its exec: started once the exec happened.
    await settled(init, () => programStarted(init.pid ?? 0));
    assert.equal(await programStarted(init.pid ?? 0), true);
  } finally {
    end(init);
  }
});
