/** Looking at the host's processes from end-to-end tests. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface HostProc {
  pid: number;
  ppid: number;
  uid: number;
  /** ps STAT: `Z…` is a zombie (dead, waiting to be reaped). */
  stat: string;
  args: string;
}

/** Every process on the host, as `ps -eo pid,ppid,uid,stat,args` shows it. */
export async function hostProcesses(): Promise<HostProc[]> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('ps', ['-eo', 'pid=,ppid=,uid=,stat=,args='], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const procs: HostProc[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m?.[1] && m[2] && m[3] && m[4] && m[5] !== undefined) {
      procs.push({ pid: Number(m[1]), ppid: Number(m[2]), uid: Number(m[3]), stat: m[4], args: m[5] });
    }
  }
  return procs;
}

/** Real, effective, saved and filesystem uid of a host process (from /proc/<pid>/status). */
export async function uidsOf(pid: number): Promise<number[]> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
  assert.ok(m, `no Uid line for pid ${pid}`);
  return [m[1], m[2], m[3], m[4]].map(Number);
}

/** Polls `fn` every 30 ms until it returns a value other than undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(30);
  }
}

/**
 * Polls `fn` every 30 ms until `ok` accepts its value or `ms` have passed, and returns the last
 * value either way: the caller asserts on it, so a failure shows what was still there.
 */
export async function settledValue<T>(ms: number, fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || performance.now() > deadline) return v;
    await sleep(30);
  }
}

/** Mount points at or below `dir` (as /proc/self/mounts writes them: a space is `\040`). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/**
 * What must hold once `done` has arrived: no process of the session's host uid, live or zombie
 * (the server's keeper reaps the sandbox's PID 1 before the execution can end), and nothing
 * whose command line holds `marker`.
 */
export async function assertNothingLeft(uid: number, what: string, marker?: string): Promise<void> {
  const procs = await hostProcesses();
  if (marker !== undefined) assert.deepEqual(procs.filter((p) => p.args.includes(marker)), [], `${what}: ${marker} still on the host after done`);
  assert.deepEqual(procs.filter((p) => p.uid === uid), [], `${what}: processes (live or zombie) of host uid ${uid} after done`);
}
