/**
 * The `sluice run` CLI end to end: the built bin as a child process against a real server.
 * Output goes to the right stream live, the exit code is the program's, Ctrl-C cancels the
 * remote execution, the ephemeral session is cleaned up, and failures say what to do.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExecutionEvent, type ExecutionEvent } from '@sluice/protocol';
import { CLI, startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf } from './helpers/client.js';

let server: TestServer;
let scratch: string;
before(async () => {
  server = await startServer();
  scratch = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
});
after(async () => {
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
});

interface Chunk {
  at: number;
  text: string;
}

interface CLIRun {
  /** Resolves when the CLI exits. */
  exited: Promise<CLIResult>;
  /** Sends a signal to the CLI. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the CLI's stdout so far matches `re`; kills the CLI and rejects after 10 s. */
  waitForStdout(re: RegExp): Promise<void>;
}

interface CLIResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout 'data' events with their arrival times (performance.now()). */
  stdoutChunks: Chunk[];
  /** When the process exited (performance.now()). */
  exitedAt: number;
}

/** Starts `sluice <args>` with a clean environment (no SLUICE_URL, no API key); killed after `limitMs`. */
function startCLI(args: string[], limitMs = 30_000): CLIRun {
  const proc = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const stdoutChunks: Chunk[] = [];
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  proc.stdout.setEncoding('utf8').on('data', (t: string) => {
    stdout += t;
    stdoutChunks.push({ at: performance.now(), text: t });
    for (const w of waiters.splice(0)) {
      if (w.re.test(stdout)) w.resolve();
      else waiters.push(w);
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
  const exited = new Promise<CLIResult>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, stdoutChunks, exitedAt: performance.now() });
    });
  });
  return {
    exited,
    kill: (signal) => proc.kill(signal),
    waitForStdout: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stdout)) {
          resolve();
          return;
        }
        const give = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(give);
            resolve();
          },
        });
        void exited.then((r) => {
          clearTimeout(give);
          reject(new Error(`CLI exited (${r.code ?? r.signal}) before stdout matched ${re}:\n${r.stdout}\n${r.stderr}`));
        });
      }),
  };
}

/** Runs `sluice run --url <server> <args>` to completion. */
function sluiceRun(args: string[], limitMs?: number): Promise<CLIResult> {
  return startCLI(['run', '--url', server.url, ...args], limitMs).exited;
}

/** Parses the CLI's --json output: one contract event per line, nothing else. */
function ndjson(stdout: string): ExecutionEvent[] {
  assert.ok(stdout.endsWith('\n'), 'NDJSON ends with a newline');
  return stdout
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const r = parseExecutionEvent(JSON.parse(line));
      if (!r.ok) throw new Error(`not a contract event: ${r.message}: ${line}`);
      return r.value;
    });
}

function startOf(events: readonly ExecutionEvent[]): Extract<ExecutionEvent, { type: 'start' }> {
  const start = events[0];
  if (start?.type !== 'start') throw new Error(`first event is ${start?.type ?? 'missing'}, not start`);
  return start;
}

async function getJSON(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, body: await res.json() };
}

async function sessionIDs(): Promise<string[]> {
  const { status, body } = await getJSON('/api/sessions');
  assert.equal(status, 200);
  const sessions = (body as { sessions: { id: string }[] }).sessions;
  return sessions.map((s) => s.id);
}

const show = (r: CLIResult): string =>
  `exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nserver log: ${server.logs().slice(-4000)}`;

test('-c runs python by default: stdout and stderr go to their own streams, the exit code is the program\'s', async () => {
  const r = await sluiceRun(['-c', 'import sys; print("out"); print("err", file=sys.stderr); sys.exit(3)']);
  assert.equal(r.code, 3, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.match(r.stderr, /^err\n/m);
  assert.ok(r.stderr.includes('err\n'), show(r));

  const ok = await sluiceRun(['-c', 'print(6 * 7)']);
  assert.equal(ok.code, 0, show(ok));
  assert.equal(ok.stdout, '42\n');
  assert.equal(ok.stderr, '');
});

test('a FILE runs in the language its extension names (.sh → bash); --language overrides it', async () => {
  const sh = join(scratch, 'hello.sh');
  await writeFile(sh, 'echo "${BASH_VERSION:+bash}"\necho to-stderr >&2\nexit 5\n');
  const r = await sluiceRun([sh]);
  assert.equal(r.code, 5, show(r));
  assert.equal(r.stdout, 'bash\n', 'run by bash (BASH_VERSION is set)');
  assert.equal(r.stderr, 'to-stderr\n');

  const py = join(scratch, 'snippet.txt');
  await writeFile(py, 'import sys\nprint(sys.version_info[0])\n');
  const p = await sluiceRun([py, '--language', 'python']);
  assert.equal(p.code, 0, show(p));
  assert.equal(p.stdout, '3\n');

  const missing = await sluiceRun([join(scratch, 'nope.py')]);
  assert.equal(missing.code, 2, show(missing));
  assert.match(missing.stderr, /cannot read .*nope\.py/);
});

test('output streams live: lines printed 300 ms apart reach the CLI\'s stdout 300 ms apart', async () => {
  const r = await sluiceRun(['-c', 'import time\nfor i in range(5):\n    print(f"line {i}")\n    time.sleep(0.3)\n']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, [0, 1, 2, 3, 4].map((i) => `line ${i}\n`).join(''));
  // Arrival time of each line (a chunk may carry several; each line gets its chunk's time).
  const arrivals: number[] = [];
  for (const c of r.stdoutChunks) for (let n = c.text.split('\n').length - 1; n > 0; n--) arrivals.push(c.at);
  assert.equal(arrivals.length, 5);
  const first = arrivals[0] ?? 0;
  const last = arrivals[4] ?? 0;
  assert.ok(last - first > 900, `lines spread over ≈1.2 s, got ${(last - first).toFixed(0)} ms`);
  assert.ok(r.exitedAt - first > 1000, `first line ${(r.exitedAt - first).toFixed(0)} ms before exit`);
  const gaps = arrivals.slice(1).map((t, i) => t - (arrivals[i] ?? 0));
  for (const g of gaps) assert.ok(g > 150, `each line on its own, as printed: gaps ${gaps.map((x) => x.toFixed(0)).join(', ')} ms`);
});

test('--json prints the event log as NDJSON: contract events, contiguous seq, one final done', async () => {
  const r = await sluiceRun(['--json', '-c', 'import sys\nprint("a")\nprint("b", file=sys.stderr)\nsys.exit(4)\n']);
  assert.equal(r.code, 4, show(r));
  assert.equal(r.stderr, '', 'nothing else is printed in --json mode');
  const events = ndjson(r.stdout);
  assertContiguous(events);
  const start = startOf(events);
  assert.equal(start.language, 'python');
  assert.match(start.session_id, /^cli-/);
  const done = doneOf(events);
  assert.equal(done.exit_code, 4);
  assert.equal(done.reason, 'exited');
  // print() may write "a" and "\n" separately, so adjacent chunks of one stream are joined.
  const outputs: string[] = [];
  let prev: string | null = null;
  for (const e of events) {
    if (e.type !== 'stdout' && e.type !== 'stderr') continue;
    if (e.type === prev) outputs[outputs.length - 1] += e.content;
    else outputs.push(`${e.type}:${e.content}`);
    prev = e.type;
  }
  assert.deepEqual(outputs, ['stdout:a\n', 'stderr:b\n']);
});

test('Ctrl-C cancels the remote execution and exits promptly with a non-zero code', async () => {
  const cli = startCLI(['run', '--url', server.url, '--json', '-c', 'import sys, time\nsys.stdout.write("ready\\n")\ntime.sleep(60)\n'], 15_000);
  await cli.waitForStdout(/"content":"ready\\n"/);
  const sentAt = performance.now();
  cli.kill('SIGINT');
  const r = await cli.exited;
  const took = r.exitedAt - sentAt;
  assert.ok(took < 5000, `exited ${took.toFixed(0)} ms after SIGINT\n${show(r)}`);
  assert.notEqual(r.code, 0, show(r));
  assert.notEqual(r.code, null, `exited by itself, not killed: ${show(r)}`);

  const events = ndjson(r.stdout);
  const start = startOf(events);
  // The CLI saw the execution end, and so does the server.
  assert.equal(doneOf(events).reason, 'cancelled', show(r));
  const ex = await getJSON(`/api/executions/${start.execution_id}`);
  assert.equal(ex.status, 200);
  const view = ex.body as { state: string; reason: string | null };
  assert.equal(view.state, 'finished');
  assert.equal(view.reason, 'cancelled');
  // Nothing keeps running: the ephemeral session is gone with its sandbox.
  assert.ok(!(await sessionIDs()).includes(start.session_id));
  assert.equal((await getJSON(`/api/sessions/${start.session_id}`)).status, 404);
});

test('Ctrl-C without --json tells the user the run was cancelled', async () => {
  const cli = startCLI(['run', '--url', server.url, '-c', 'import sys, time\nsys.stdout.write("ready\\n")\ntime.sleep(60)\n'], 15_000);
  await cli.waitForStdout(/ready\n/);
  cli.kill('SIGINT');
  const r = await cli.exited;
  assert.notEqual(r.code, 0, show(r));
  assert.notEqual(r.code, null, show(r));
  assert.match(r.stderr, /cancell/, show(r));
  assert.deepEqual((await sessionIDs()).filter((id) => id.startsWith('cli-')), []);
});

test('without --session the CLI deletes its ephemeral session; --session keeps the named one', async () => {
  const r = await sluiceRun(['--json', '-c', 'open("f.txt", "w").write("kept")']);
  assert.equal(r.code, 0, show(r));
  const ephemeral = startOf(ndjson(r.stdout)).session_id;
  assert.match(ephemeral, /^cli-/);
  assert.equal((await getJSON(`/api/sessions/${ephemeral}`)).status, 404);
  assert.deepEqual((await sessionIDs()).filter((id) => id.startsWith('cli-')), []);

  const w = await sluiceRun(['--session', 'keep', '-c', 'open("f.txt", "w").write("kept")']);
  assert.equal(w.code, 0, show(w));
  assert.ok((await sessionIDs()).includes('keep'), 'the named session outlives the run');
  const rd = await sluiceRun(['--session', 'keep', '-c', 'print(open("f.txt").read())']);
  assert.equal(rd.code, 0, show(rd));
  assert.equal(rd.stdout, 'kept\n', 'its workspace too');
  assert.ok((await sessionIDs()).includes('keep'));
  const del = await fetch(`${server.url}/api/sessions/keep`, { method: 'DELETE' });
  assert.ok(del.ok);
});

test('an unreachable server: exit 1 and a hint to start `sluice serve`', async () => {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  const r = await startCLI(['run', '--url', 'http://127.0.0.1:1', '-c', 'print(1)']).exited;
  assert.equal(r.code, 1, show(r));
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /cannot reach Sluice at http:\/\/127\.0\.0\.1:1/);
  assert.match(r.stderr, /sluice serve/);
});

test('neither FILE nor -c (or both): exit 2 with a usage message', async () => {
  const none = await sluiceRun([]);
  assert.equal(none.code, 2, show(none));
  assert.match(none.stderr, /sluice run: give either a FILE or -c CODE/);
  assert.equal(none.stdout, '');

  const both = await sluiceRun([join(scratch, 'x.py'), '-c', 'print(1)']);
  assert.equal(both.code, 2, show(both));
  assert.match(both.stderr, /give either a FILE or -c CODE/);

  const badTimeout = await sluiceRun(['-c', 'print(1)', '--timeout', 'soon']);
  assert.equal(badTimeout.code, 2, show(badTimeout));
  assert.match(badTimeout.stderr, /--timeout/);
});
