/**
 * The `sluice` client commands end to end: the built bin as a child process against a real
 * server. Output goes to the right stream live, the exit status is the program's (or the
 * documented one for a timeout, a cancel, a closed pipe, a server error), Ctrl-C cancels the
 * remote execution, --json is the contract's NDJSON, sessions and files work byte for byte,
 * exec keeps a kernel's state, and progress is a bar on a terminal only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExecutionEvent, type ExecutionEvent } from '@sluice/protocol';
import { CLI, startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf } from './helpers/client.js';
import { hostProcesses, waitFor } from './helpers/host.js';

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

interface CLIResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout exactly as bytes (files get -). */
  stdoutBytes: Buffer;
  /** stdout 'data' events with their arrival times (performance.now()). */
  stdoutChunks: Chunk[];
  /** When the process exited (performance.now()). */
  exitedAt: number;
}

interface CLIRun {
  pid: number;
  /** Resolves when the CLI exits. */
  exited: Promise<CLIResult>;
  /** Sends a signal to the CLI. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the CLI's stdout so far matches `re`; kills the CLI and rejects after 15 s. */
  waitForStdout(re: RegExp): Promise<void>;
  /** Closes our end of the CLI's stdout, as `| head` does once it has read enough. */
  closeStdout(): void;
}

interface StartOptions {
  /** Extra environment (the base is only PATH: no SLUICE_URL, no API key). */
  env?: Record<string, string>;
  /** Bytes for the CLI's stdin, then end of file; default: /dev/null. */
  input?: string | Buffer;
  limitMs?: number;
}

/** Starts `sluice <args>` with a clean environment; killed after `limitMs`. */
function startCLI(args: string[], opts: StartOptions = {}): CLIRun {
  const proc = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...opts.env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (opts.input !== undefined) proc.stdin?.end(opts.input);
  const { stdout: out, stderr: err } = proc;
  if (out === null || err === null) throw new Error('spawned without stdout/stderr pipes');
  let stdout = '';
  let stderr = '';
  const bytes: Buffer[] = [];
  const stdoutChunks: Chunk[] = [];
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const decoder = new TextDecoder();
  out.on('data', (b: Buffer) => {
    bytes.push(b);
    const t = decoder.decode(b, { stream: true });
    stdout += t;
    stdoutChunks.push({ at: performance.now(), text: t });
    for (const w of waiters.splice(0)) {
      if (w.re.test(stdout)) w.resolve();
      else waiters.push(w);
    }
  });
  // The CLI may see EPIPE on purpose (closeStdout); so may we.
  out.on('error', () => {});
  err.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.limitMs ?? 30_000);
  const exited = new Promise<CLIResult>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, stdoutBytes: Buffer.concat(bytes), stdoutChunks, exitedAt: performance.now() });
    });
  });
  return {
    pid: proc.pid ?? -1,
    exited,
    kill: (signal) => proc.kill(signal),
    closeStdout: () => out.destroy(),
    waitForStdout: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stdout)) {
          resolve();
          return;
        }
        const give = setTimeout(() => proc.kill('SIGKILL'), 15_000);
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

/** `sluice <command> --url <server> <args>`, to completion. */
function sluice(command: string[], args: string[], opts?: StartOptions): Promise<CLIResult> {
  return startCLI([...command, '--url', server.url, ...args], opts).exited;
}

const sluiceRun = (args: string[], opts?: StartOptions): Promise<CLIResult> => sluice(['run'], args, opts);

/** Parses the CLI's --json output: one contract event per line, nothing else. */
function ndjson(stdout: string): ExecutionEvent[] {
  assert.ok(stdout.endsWith('\n'), `NDJSON ends with a newline: ${JSON.stringify(stdout.slice(-80))}`);
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
  return (body as { sessions: { id: string }[] }).sessions.map((s) => s.id);
}

async function deleteSession(id: string): Promise<void> {
  await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' });
}

/** Waits until no host process has `marker` in its command line. */
async function processGone(marker: string): Promise<void> {
  await waitFor(`no host process with ${marker}`, 5000, async () => ((await hostProcesses()).some((p) => p.args.includes(marker)) ? undefined : true));
}

const show = (r: CLIResult): string =>
  `exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nserver log: ${server.logs().slice(-4000)}`;

test('run -c: stdout and stderr go to their own streams and the exit status is the program\'s', async () => {
  const r = await sluiceRun(['-c', 'import sys; print("out"); print("err", file=sys.stderr); sys.exit(3)']);
  assert.equal(r.code, 3, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');

  const ok = await sluiceRun(['--mode', 'process', '-c', 'print(6 * 7)']);
  assert.equal(ok.code, 0, show(ok));
  assert.equal(ok.stdout, '42\n');
  assert.equal(ok.stderr, '');
});

test('a kernel cell\'s trailing expression is printed on stdout (its text/plain result)', async () => {
  const r = await sluiceRun(['-c', 'x = 6\nx * 7']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, '42\n');
  assert.equal(r.stderr, '');
});

test('a FILE runs in the language its extension or #! line names; --lang overrides; a missing FILE exits 66', async () => {
  const sh = join(scratch, 'hello.sh');
  await writeFile(sh, 'echo "${BASH_VERSION:+bash}"\necho to-stderr >&2\nexit 5\n');
  const r = await sluiceRun([sh]);
  assert.equal(r.code, 5, show(r));
  assert.equal(r.stdout, 'bash\n', 'run by bash (BASH_VERSION is set)');
  assert.equal(r.stderr, 'to-stderr\n');

  const script = join(scratch, 'tool');
  await writeFile(script, '#!/usr/bin/env bash\necho "${BASH_VERSION:+bash}"\n');
  const shebang = await sluiceRun([script]);
  assert.equal(shebang.code, 0, show(shebang));
  assert.equal(shebang.stdout, 'bash\n');

  const txt = join(scratch, 'snippet.txt');
  await writeFile(txt, 'import sys\nprint(sys.version_info[0])\n');
  const p = await sluiceRun([txt, '--lang', 'python']);
  assert.equal(p.code, 0, show(p));
  assert.equal(p.stdout, '3\n');

  const missing = await sluiceRun([join(scratch, 'nope.py')]);
  assert.equal(missing.code, 66, show(missing));
  assert.match(missing.stderr, /^sluice: cannot read .*nope\.py/);
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

for (const transport of ['sse', 'websocket'] as const) {
  test(`--json (${transport}) prints the event log as NDJSON: contract events, contiguous seq, one final done`, async () => {
    const r = await sluiceRun(['--json', '--transport', transport, '-c', 'import sys\nprint("a")\nprint("b", file=sys.stderr)\nsys.exit(4)\n']);
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
}

test('Ctrl-C cancels the remote execution, waits for its done, and exits 130; nothing is left on the server', async () => {
  const marker = `600.${randomInt(1e6, 1e7)}`;
  const cli = startCLI(['run', '--url', server.url, '--json', '--lang', 'bash', '-c', `echo ready; sleep ${marker}`], { limitMs: 20_000 });
  await cli.waitForStdout(/"content":"ready\\n"/);
  assert.ok((await hostProcesses()).some((p) => p.args.includes(`sleep ${marker}`)), 'the program runs on the host');
  const sentAt = performance.now();
  cli.kill('SIGINT');
  const r = await cli.exited;
  const took = r.exitedAt - sentAt;
  assert.equal(r.code, 130, show(r));
  assert.ok(took < 5000, `exited ${took.toFixed(0)} ms after SIGINT\n${show(r)}`);
  assert.match(r.stderr, /cancelling/);

  const events = ndjson(r.stdout);
  assertContiguous(events);
  const start = startOf(events);
  assert.equal(doneOf(events).reason, 'cancelled', 'the CLI waited for the done');
  // The server agrees, the program is gone, and so is the ephemeral session.
  const ex = await getJSON(`/api/executions/${start.execution_id}`);
  assert.equal(ex.status, 200);
  const view = ex.body as { state: string; reason: string | null };
  assert.equal(view.state, 'finished');
  assert.equal(view.reason, 'cancelled');
  await processGone(`sleep ${marker}`);
  assert.equal((await getJSON(`/api/sessions/${start.session_id}`)).status, 404);
});

test('Ctrl-C in a python kernel cell: the cell is interrupted, the CLI says so and exits 130', async () => {
  const cli = startCLI(['run', '--url', server.url, '-c', 'import time\nprint("ready")\ntime.sleep(60)\n'], { limitMs: 20_000 });
  await cli.waitForStdout(/ready\n/);
  cli.kill('SIGINT');
  const r = await cli.exited;
  assert.equal(r.code, 130, show(r));
  assert.equal(r.stdout, 'ready\n');
  assert.match(r.stderr, /sluice: cancelled after \d+\.\d{3}s\n$/, show(r));
  assert.deepEqual((await sessionIDs()).filter((id) => id.startsWith('cli-')), []);
});

test('a second Ctrl-C exits at once, without waiting for the done', async () => {
  // The program ignores SIGTERM, so its done comes only after the server's kill grace (2 s).
  const marker = `600.${randomInt(1e6, 1e7)}`;
  const cli = startCLI(['run', '--url', server.url, '--json', '--lang', 'bash', '-c', `trap '' TERM; echo ready; sleep ${marker}`], { limitMs: 20_000 });
  await cli.waitForStdout(/"content":"ready\\n"/);
  const sentAt = performance.now();
  cli.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 300));
  cli.kill('SIGINT');
  const r = await cli.exited;
  const took = r.exitedAt - sentAt;
  assert.equal(r.code, 130, show(r));
  assert.ok(took < 1500, `exited ${took.toFixed(0)} ms after the first SIGINT, before the grace period ended`);
  const events = ndjson(r.stdout);
  const start = startOf(events);
  try {
    assert.ok(!events.some((e) => e.type === 'done'), 'it did not wait for done');
    // The first Ctrl-C's cancel still stops the program on the server.
    const view = await waitFor('the execution to finish', 10_000, async () => {
      const v = (await getJSON(`/api/executions/${start.execution_id}`)).body as { state: string; reason: string | null };
      return v.state === 'finished' ? v : undefined;
    });
    assert.equal(view.reason, 'cancelled');
    await processGone(`sleep ${marker}`);
  } finally {
    await deleteSession(start.session_id); // left for its idle TTL by the quick exit
  }
});

test('a closed stdout (| head) cancels the remote execution and exits 141 quietly', async () => {
  try {
    const cli = startCLI(['run', '--url', server.url, '--session', 'epipe', '--mode', 'process', '-c', 'import time\ni = 0\nwhile True:\n    print(f"line {i}")\n    i += 1\n    time.sleep(0.01)\n'], { limitMs: 20_000 });
    await cli.waitForStdout(/line 2\n/);
    cli.closeStdout();
    const r = await cli.exited;
    assert.equal(r.code, 141, show(r));
    assert.equal(r.stderr, '', 'quietly');
    // The cancel was accepted before the CLI exited; the program is gone moments later, long
    // before the 60 s timeout that would end it otherwise.
    await waitFor('the session to be idle', 5000, async () => {
      const view = (await getJSON('/api/sessions/epipe')).body as { state: string; running_execution: string | null };
      return view.state === 'idle' && view.running_execution === null ? true : undefined;
    });
  } finally {
    await deleteSession('epipe');
  }
});

test('--timeout: the program is stopped and the CLI exits 124, as coreutils timeout does', async () => {
  const r = await sluiceRun(['--mode', 'process', '--timeout', '0.5', '-c', 'import time\nprint("started")\ntime.sleep(30)\n']);
  assert.equal(r.code, 124, show(r));
  assert.equal(r.stdout, 'started\n');
  assert.match(r.stderr, /sluice: timed out after 0\.\d{3}s\n$/);
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
  await deleteSession('keep');
});

test('exec runs in an existing session: a kernel\'s variables persist across invocations', async () => {
  const created = await sluice(['sessions', 'create'], ['nb', '--lang', 'python']);
  assert.equal(created.code, 0, show(created));
  assert.equal(created.stdout, 'nb\n');

  const a = await sluice(['exec'], ['nb', 'import math; radius = 2']);
  assert.equal(a.code, 0, show(a));
  assert.equal(a.stdout, '');
  const b = await sluice(['exec'], ['nb', 'print(round(math.pi * radius ** 2, 2))']);
  assert.equal(b.code, 0, show(b));
  assert.equal(b.stdout, '12.57\n');
  const c = await sluice(['exec'], ['nb', '--json', 'radius * 10']);
  assert.equal(c.code, 0, show(c));
  const result = ndjson(c.stdout).find((e) => e.type === 'result');
  assert.equal(result?.type === 'result' ? result.data['text/plain'] : undefined, '20');

  const code = await sluice(['exec'], ['nb', '-'], { input: 'import sys\nsys.exit(radius + 1)\n' });
  assert.equal(code.code, 3, `code from stdin, exit status passed through\n${show(code)}`);

  const missing = await sluice(['exec'], ['no-such-session', 'print(1)']);
  assert.equal(missing.code, 66, show(missing));
  assert.match(missing.stderr, /^sluice: NOT_FOUND: .*no-such-session/);
  assert.ok(!(await sessionIDs()).includes('no-such-session'), 'exec does not create a session');
  await deleteSession('nb');
});

test('the CLI\'s stdin reaches the program: piped as it arrives, or given with --stdin', async () => {
  const piped = await sluiceRun(['--mode', 'process', '-c', 'import sys\nfor line in sys.stdin:\n    print("got", line.strip())\n'], { input: 'one\ntwo\n' });
  assert.equal(piped.code, 0, show(piped));
  assert.equal(piped.stdout, 'got one\ngot two\n');

  const given = await sluiceRun(['--mode', 'process', '--stdin', 'Ada\n', '-c', 'print(f"hello, {input()}")']);
  assert.equal(given.code, 0, show(given));
  assert.equal(given.stdout, 'hello, Ada\n');

  const none = await sluiceRun(['-c', 'import sys\nprint(repr(sys.stdin.read()))']);
  assert.equal(none.code, 0, `stdin /dev/null: end of file at once, also in a kernel\n${show(none)}`);
  assert.equal(none.stdout, "''\n");
});

test('sessions create, ls (table, -q, --json) and rm (-f for missing ones)', async () => {
  for (const id of ['ls-a', 'ls-b']) {
    const c = await sluice(['sessions', 'create'], [id, '--idle-ttl', '300']);
    assert.equal(c.code, 0, show(c));
  }
  const table = await sluice(['sessions', 'ls'], []);
  assert.equal(table.code, 0, show(table));
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+LANGUAGE\s+STATE\s+EXECUTIONS\s+CREATED\s+EXPIRES$/);
  assert.ok(lines.some((l) => /^ls-a\s+python\s+idle\s+0\s/.test(l)), table.stdout);

  const quiet = await sluice(['sessions', 'ls'], ['-q']);
  const mine = (id: string): boolean => id === 'ls-a' || id === 'ls-b';
  assert.deepEqual(quiet.stdout.trimEnd().split('\n').filter(mine).sort(), ['ls-a', 'ls-b']);
  assert.ok(quiet.stdout.split('\n').every((l) => /^[\w-]*$/.test(l)), `ids only: ${quiet.stdout}`);
  const json = await sluice(['sessions', 'ls'], ['--json']);
  const infos = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string; idleTTL: number });
  assert.deepEqual(infos.filter((i) => mine(i.id)).map((i) => [i.id, i.idleTTL]).sort(), [['ls-a', 300], ['ls-b', 300]]);

  const removed = await sluice(['sessions', 'rm'], ['ls-a', 'ls-b']);
  assert.equal(removed.code, 0, show(removed));
  assert.deepEqual((await sessionIDs()).filter(mine), []);

  const missing = await sluice(['sessions', 'rm'], ['ls-a']);
  assert.equal(missing.code, 66, show(missing));
  assert.match(missing.stderr, /^sluice: NOT_FOUND: no session with id "ls-a"( \(request id [\w-]+\))?\n$/);
  // The server's request id is shown whenever it sends one.
  const probe = await fetch(`${server.url}/api/sessions/ls-a`, { method: 'DELETE' });
  await probe.body?.cancel();
  if ((probe.headers.get('request-id') ?? probe.headers.get('x-request-id')) !== null) assert.match(missing.stderr, /\(request id [\w-]+\)\n$/);
  const forced = await sluice(['sessions', 'rm'], ['-f', 'ls-a']);
  assert.equal(forced.code, 0, show(forced));
  assert.equal(forced.stderr, '');
});

test('files put and get round-trip binary files byte for byte, through paths and through stdin/stdout', async () => {
  await sluice(['sessions', 'create'], ['files-s']);
  // Every byte value, then random bytes: nothing may be decoded or re-encoded on the way.
  const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(300 * 1024)]);
  const local = join(scratch, 'blob.bin');
  await writeFile(local, data);

  const put = await sluice(['files', 'put'], [local, 'files-s:in/']);
  assert.equal(put.code, 0, show(put));
  const ls = await sluice(['files', 'ls'], ['files-s:in']);
  assert.match(ls.stdout, /^file\s+300 KiB\s+\S+\s+in\/blob\.bin$/m, ls.stdout);
  // The program sees the very bytes.
  const check = await sluiceRun(['--session', 'files-s', '--mode', 'process', '-c', 'import hashlib; print(hashlib.sha256(open("in/blob.bin","rb").read()).hexdigest())']);
  assert.equal(check.stdout, `${createHash('sha256').update(data).digest('hex')}\n`, show(check));

  const outDir = join(scratch, 'out');
  await mkdir(outDir);
  const get = await sluice(['files', 'get'], ['files-s:/workspace/in/blob.bin', outDir]);
  assert.equal(get.code, 0, show(get));
  assert.ok(data.equals(await readFile(join(outDir, 'blob.bin'))), 'downloaded into the directory under its own name, byte for byte');
  assert.deepEqual(await readdir(outDir), ['blob.bin'], 'no temporary file left behind');

  const viaStdin = await sluice(['files', 'put'], ['-', 'files-s:piped.bin'], { input: data });
  assert.equal(viaStdin.code, 0, show(viaStdin));
  const toStdout = await sluice(['files', 'get'], ['files-s:piped.bin', '-']);
  assert.equal(toStdout.code, 0, show(toStdout));
  assert.ok(data.equals(toStdout.stdoutBytes), 'stdin → workspace → stdout, byte for byte');

  const missing = await sluice(['files', 'get'], ['files-s:nope.bin', join(scratch, 'nope.bin')]);
  assert.equal(missing.code, 66, show(missing));
  assert.match(missing.stderr, /^sluice: NOT_FOUND: /);
  await assert.rejects(readFile(join(scratch, 'nope.bin')), 'a failed download leaves no file');

  const bad = await sluice(['files', 'get'], ['no-colon', '-']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /REMOTE: expected SESSION:PATH/);
  await deleteSession('files-s');
});

test('progress: a bar that redraws in place on a terminal; nothing on stderr when it is not one', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) {
    t.skip('script(1) from util-linux is not installed: no pseudo-terminal to test the bar on');
    return;
  }
  const code = 'import time\nprint("begin")\nfor i in range(3):\n    progress(i * 50, message=f"step {i}")\n    time.sleep(0.1)\nprint("end")\n';
  // script(1) runs the CLI on a pseudo-terminal and copies what it draws to our pipe.
  const command = [process.execPath, CLI, 'run', '--url', server.url, '-c', code].map(shellQuote).join(' ');
  const proc = spawn('script', ['-qfec', command, '/dev/null'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
  proc.stdin.end();
  let screen = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (screen += s));
  const status = await new Promise<number | null>((resolve) => proc.once('close', resolve));
  assert.equal(status, 0, screen);
  const ERASE = '\r\x1b[K';
  for (const [percent, bar] of [
    ['  0%', '-'.repeat(30)],
    [' 50%', '#'.repeat(15) + '-'.repeat(15)],
    ['100%', '#'.repeat(30)],
  ] as const) {
    assert.ok(screen.includes(`${ERASE}[${bar}] ${percent} step`), `the bar at ${percent} is drawn over the line: ${JSON.stringify(screen)}`);
  }
  // The program's lines are whole (the bar was erased before each), and the bar is gone at the end.
  assert.match(screen, /(^|\x1b\[K)begin\r\n/);
  assert.match(screen, /\x1b\[Kend\r\n/);
  assert.ok(screen.endsWith(ERASE), `the bar is erased at the end: ${JSON.stringify(screen.slice(-120))}`);

  const plain = await sluiceRun(['-c', code]);
  assert.equal(plain.code, 0, show(plain));
  assert.equal(plain.stdout, 'begin\nend\n');
  assert.equal(plain.stderr, '', 'no bar, and no progress lines, where stderr is not a terminal');
  const json = await sluiceRun(['--json', '-c', code]);
  assert.deepEqual(
    ndjson(json.stdout).flatMap((e) => (e.type === 'progress' ? [[e.percent, e.message]] : [])),
    [[0, 'step 0'], [50, 'step 1'], [100, 'step 2']],
    '--json keeps every progress event',
  );
});

test('errors: an unreachable server exits 69 with a hint, a bad URL exits 2, usage errors exit 2', async () => {
  // A port that was just free: nothing listens there, the connection is refused at once.
  const closedPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 1));
    });
  });
  const url = `http://127.0.0.1:${closedPort}`;
  const r = await startCLI(['run', '--url', url, '-c', 'print(1)']).exited;
  assert.equal(r.code, 69, show(r));
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^sluice: CONNECTION_ERROR: .*ECONNREFUSED/m);
  assert.match(r.stderr, /^sluice: hint: start a server with `sluice serve`, or point --url \(or SLUICE_URL\) at one; tried http:\/\/127\.0\.0\.1:\d+$/m);

  const viaEnv = await startCLI(['sessions', 'ls'], { env: { SLUICE_URL: url } }).exited;
  assert.equal(viaEnv.code, 69, `SLUICE_URL is used\n${show(viaEnv)}`);

  const badURL = await startCLI(['sessions', 'ls', '--url', 'localhost:8080']).exited;
  assert.equal(badURL.code, 2, show(badURL));
  assert.match(badURL.stderr, /^sluice: --url \(or SLUICE_URL\): expected /);

  const none = await sluiceRun([]);
  assert.equal(none.code, 2, show(none));
  assert.match(none.stderr, /^sluice: give a FILE to run, - to read the code from stdin, or -c CODE\n$/);
  const both = await sluiceRun([join(scratch, 'x.py'), '-c', 'print(1)']);
  assert.equal(both.code, 2, show(both));
  assert.match(both.stderr, /not both/);
  const badTimeout = await sluiceRun(['-c', 'print(1)', '--timeout', 'soon']);
  assert.equal(badTimeout.code, 2, show(badTimeout));
  assert.match(badTimeout.stderr, /--timeout <seconds>' argument 'soon' is invalid\. expected a number of seconds > 0/);
  const unknown = await sluice(['sessions', 'frobnicate'], []);
  assert.equal(unknown.code, 2, show(unknown));
});

test('errors from the server: its code and message on stderr and a documented exit status', async () => {
  const lang = await sluiceRun(['--lang', 'cobol', '-c', 'DISPLAY 1']);
  assert.equal(lang.code, 65, show(lang));
  assert.match(lang.stderr, /^sluice: UNSUPPORTED_LANGUAGE: .*cobol/);
  const mode = await sluiceRun(['--lang', 'bash', '--mode', 'kernel', '-c', 'echo 1']);
  assert.equal(mode.code, 65, show(mode));
  assert.match(mode.stderr, /^sluice: INVALID_REQUEST: mode: /);
});

test('API keys: without SLUICE_API_KEY, or with a wrong one, exit 77 UNAUTHORIZED; with the right one, it runs', async () => {
  const keyed = await startServer({ SLUICE_API_KEYS: 'sk-cli-test-0123456789' });
  try {
    const none = await startCLI(['run', '--url', keyed.url, '-c', 'print(1)']).exited;
    assert.equal(none.code, 77, show(none));
    assert.match(none.stderr, /^sluice: UNAUTHORIZED: /m);
    assert.match(none.stderr, /^sluice: hint: set SLUICE_API_KEY/m);
    const wrong = await startCLI(['sessions', 'ls', '--url', keyed.url], { env: { SLUICE_API_KEY: 'sk-wrong' } }).exited;
    assert.equal(wrong.code, 77, show(wrong));
    const right = await startCLI(['run', '--url', keyed.url, '--mode', 'process', '-c', 'print("in")'], { env: { SLUICE_API_KEY: 'sk-cli-test-0123456789' } }).exited;
    assert.equal(right.code, 0, show(right));
    assert.equal(right.stdout, 'in\n');
  } finally {
    await keyed.stop();
  }
});

/** Quotes one word for sh. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`;
}
