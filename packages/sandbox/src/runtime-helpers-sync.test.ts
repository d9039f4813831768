/**
 * The sync protocol of the bash, R and Java helpers (run on the host, fd 3 the events channel):
 * on a socket each event line carries "sync":true and the helper returns only once the server
 * answers one 0x06 byte, so output printed after the call comes after the event; end of file
 * ends the wait; on a pipe there is no "sync" and nothing to wait for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { appendJavaHelper, runtimeFor } from './runtimes.js';

const RUNTIME = fileURLToPath(new URL('../runtime', import.meta.url));
const DEADLINE_MS = 60_000;

interface Command {
  cmd: string;
  args: string[];
  env?: Record<string, string>;
}

/** A program that prints "before", makes one helper call, then prints "after". */
interface Program {
  name: string;
  /** Why it cannot run here, if it cannot. */
  missing: () => string | undefined;
  write: (dir: string) => Promise<Command>;
  event: Record<string, unknown>;
}

const PROGRESS_EVENT = { type: 'progress', percent: 5, message: 'a' };

const PROGRAMS: Program[] = [
  {
    name: 'sluice-progress',
    missing: () => undefined,
    write: async () => ({ cmd: '/bin/sh', args: ['-c', 'echo before; "$1" 5 a; echo after', 'sh', join(RUNTIME, 'bin', 'sluice-progress')] }),
    event: PROGRESS_EVENT,
  },
  {
    name: 'sluice-result',
    missing: () => undefined,
    write: async () => ({ cmd: '/bin/sh', args: ['-c', 'echo before; "$1" done; echo after', 'sh', join(RUNTIME, 'bin', 'sluice-result')] }),
    event: { type: 'result', data: { 'text/plain': 'done' } },
  },
  {
    name: 'R progress()',
    missing: () => (existsSync('/usr/bin/Rscript') ? undefined : 'Rscript is not installed'),
    write: async (dir) => {
      await writeFile(join(dir, 'main.R'), 'cat("before\\n")\nprogress(5, "a")\ncat("after\\n")\n');
      return { cmd: '/usr/bin/Rscript', args: [join(dir, 'main.R')], env: { R_PROFILE_USER: join(RUNTIME, 'r', 'sluice.R') } };
    },
    event: PROGRESS_EVENT,
  },
  {
    name: 'Java Sluice.progress()',
    missing: () => (existsSync('/usr/bin/javac') ? undefined : 'no JDK'),
    write: (dir) => javaProgram(dir, ['System.out.println("before");', 'Sluice.progress(5, "a");', 'System.out.println("after");']),
    event: PROGRESS_EVENT,
  },
];

async function javaProgram(dir: string, body: readonly string[]): Promise<Command> {
  const file = join(dir, 'Main.java');
  await writeFile(file, appendJavaHelper(['public class Main {', '  public static void main(String[] args) throws Exception {', ...body, '  }', '}'].join('\n')));
  const args = runtimeFor('java')?.args(file);
  assert.ok(args, 'a java runtime');
  return { cmd: '/usr/bin/java', args: [...args] };
}

interface Running {
  stdout: () => string;
  stderr: () => string;
  /** Complete lines written to fd 3 so far. */
  lines: () => string[];
  /** fd 3, the test's end of the socket. */
  channel: Duplex;
  /** The exit code once the program has ended and its stdio closed; undefined before. */
  code: () => number | null | undefined;
  pid: number;
  stop: () => void;
}

/**
 * Starts a command with fd 3 (SLUICE_EVENTS_FD) a socket, as Node makes child stdio and as the
 * sandbox gets it, or with `pipe` a pipe into a `cat` that copies it onto that socket. Nothing
 * is acknowledged unless the test writes 0x06 to `channel`.
 */
function start(command: Command, over: 'socket' | 'pipe'): Running {
  const [cmd, args] =
    over === 'socket'
      ? [command.cmd, command.args]
      : ['/bin/sh', ['-c', 'exec 4>&1; { "$@" 3>&1 1>&4 4>&-; } | cat >&3', 'sh', command.cmd, ...command.args]];
  const child = spawn(cmd, args, {
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', SLUICE_EVENTS_FD: '3', ...command.env },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    // Its own process group, so a failed test can end the helper under a shell too.
    detached: true,
  });
  const { stdout, stderr, pid } = child;
  const channel = child.stdio[3];
  assert.ok(stdout && stderr && pid !== undefined, 'started');
  assert.ok(channel instanceof Duplex, 'fd 3 is a socket');
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const ev: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  channel.on('data', (c: Buffer) => ev.push(c));
  // The helper may be gone before an acknowledgement arrives.
  channel.on('error', () => {});
  let code: number | null | undefined;
  child.on('error', (e) => err.push(Buffer.from(String(e))));
  child.on('close', (c) => (code = c ?? -1));
  return {
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
    lines: () => {
      const text = Buffer.concat(ev).toString('utf8');
      return text.split('\n').slice(0, -1);
    },
    channel,
    code: () => code,
    pid,
    stop: () => {
      // End of file lets a waiting helper go on; a program still running is ended.
      channel.destroy();
      if (code === undefined) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
  };
}

async function until(what: string, cond: () => boolean, r: Running): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > deadline) {
      assert.fail(`timed out waiting for ${what}; stdout ${JSON.stringify(r.stdout())}, stderr ${JSON.stringify(r.stderr())}, events ${JSON.stringify(r.lines())}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** read(2)'s syscall number, as /proc/PID/syscall shows it. */
const READ_SYSCALL = process.arch === 'arm64' ? '63' : '0';

/**
 * Whether a thread of `root` or of a process under it is blocked in read(3, …) right now:
 * the helper waiting for its acknowledgement (a perl for bash and R, a JVM thread for Java).
 */
function readingFd3(root: number): boolean {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // Gone meanwhile.
    }
  }
  const under = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  for (const pid of parents.keys()) {
    if (!under(pid)) continue;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const [nr, fd] = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ');
        if (nr === READ_SYSCALL && fd === '0x3') return true;
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return false;
}

async function ended(r: Running): Promise<number | null | undefined> {
  await until('the program to end', () => r.code() !== undefined, r);
  return r.code();
}

function parse(line: string | undefined): Record<string, unknown> {
  assert.ok(line !== undefined, 'an event line');
  return JSON.parse(line) as Record<string, unknown>;
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const program of PROGRAMS) {
  test(`${program.name}: on a socket the line asks for an acknowledgement, and the call returns only once it comes`, async (t) => {
    const missing = program.missing();
    if (missing !== undefined) return t.skip(missing);
    await withDir(async (dir) => {
      const r = start(await program.write(dir), 'socket');
      try {
        await until('the event line', () => r.lines().length === 1, r);
        assert.deepEqual(parse(r.lines()[0]), { ...program.event, sync: true });
        // The helper is in its read of the acknowledgement, so what follows the call cannot have run.
        await until('the helper to wait on fd 3', () => readingFd3(r.pid) || r.stdout() !== 'before\n', r);
        assert.equal(r.stdout(), 'before\n', 'nothing printed after the call before the acknowledgement');
        r.channel.write(Buffer.from([0x06]));
        await until('"after"', () => r.stdout() === 'before\nafter\n', r);
        assert.equal(await ended(r), 0, r.stderr());
        assert.equal(r.lines().length, 1);
      } finally {
        r.stop();
      }
    });
  });

  test(`${program.name}: end of file on the channel instead of an acknowledgement lets the call return`, async (t) => {
    const missing = program.missing();
    if (missing !== undefined) return t.skip(missing);
    await withDir(async (dir) => {
      const r = start(await program.write(dir), 'socket');
      try {
        await until('the event line', () => r.lines().length === 1, r);
        r.channel.destroy();
        assert.equal(await ended(r), 0, r.stderr());
        assert.equal(r.stdout(), 'before\nafter\n');
      } finally {
        r.stop();
      }
    });
  });

  test(`${program.name}: on a pipe the line has no "sync" and nothing waits`, async (t) => {
    const missing = program.missing();
    if (missing !== undefined) return t.skip(missing);
    await withDir(async (dir) => {
      const r = start(await program.write(dir), 'pipe');
      try {
        // Never acknowledged: the program ends on its own.
        assert.equal(await ended(r), 0, r.stderr());
        assert.equal(r.stdout(), 'before\nafter\n');
        assert.deepEqual(r.lines().map((l) => parse(l)), [program.event]);
      } finally {
        r.stop();
      }
    });
  });
}

test('Java: threads take turns, each reading its own acknowledgement', async (t) => {
  if (!existsSync('/usr/bin/javac')) return t.skip('no JDK');
  await withDir(async (dir) => {
    const command = await javaProgram(dir, [
      'Thread[] ts = new Thread[2];',
      'for (int i = 0; i < 2; i++) { String m = "t" + i; ts[i] = new Thread(() -> Sluice.progress(m)); ts[i].start(); }',
      'for (Thread th : ts) th.join();',
      'System.out.println("after");',
    ]);
    const r = start(command, 'socket');
    try {
      await until('the first line', () => r.lines().length === 1, r);
      await until('its thread to wait on fd 3', () => readingFd3(r.pid) || r.lines().length > 1, r);
      // The other thread waits for the lock, not on the channel: its line is not written yet.
      assert.equal(r.lines().length, 1);
      r.channel.write(Buffer.from([0x06]));
      await until('the second line', () => r.lines().length === 2, r);
      await until('its thread to wait on fd 3', () => readingFd3(r.pid) || r.stdout() !== '', r);
      assert.equal(r.stdout(), '');
      r.channel.write(Buffer.from([0x06]));
      assert.equal(await ended(r), 0, r.stderr());
      assert.equal(r.stdout(), 'after\n');
      assert.deepEqual(r.lines().map((l) => parse(l)['message']).sort(), ['t0', 't1']);
    } finally {
      r.stop();
    }
  });
});
