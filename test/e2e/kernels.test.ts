/**
 * Kernel mode end to end (real server, real sandboxes): state across cells in python and
 * javascript, trailing-expression results (and `;`), exceptions the kernel survives, timeouts and
 * cancels that interrupt the cell but keep the variables, a cell that ignores SIGINT costing a
 * kernel restart (said in `done`), the restart endpoint, stdin in a cell, progress in order with
 * stdout, rich results (PNG, HTML), subprocess output, and processes a cell leaves behind.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionEvent, ResultEvent } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf, outcome, postJSON, readSSE, runStream, stream, text, type RunOutcome, type Timed } from './helpers/client.js';
import { hostProcesses, waitFor } from './helpers/host.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

let sessions = 0;
/** A fresh session id for one test. */
function session(name: string): string {
  return `k-${name}-${++sessions}`;
}

async function cell(sessionID: string, language: 'python' | 'javascript', code: string, extra: Record<string, unknown> = {}): Promise<RunOutcome> {
  return runStream(server.url, sessionID, { language, code, ...extra });
}

function results(events: readonly ExecutionEvent[]): ResultEvent['data'][] {
  return events.filter((e): e is Extract<Timed, { type: 'result' }> => e.type === 'result').map((e) => e.data);
}

function startOf(r: RunOutcome): Extract<ExecutionEvent, { type: 'start' }> {
  const s = r.events[0];
  assert.ok(s?.type === 'start');
  return s;
}

test('python: variables, imports and functions persist across three executions; the trailing expression is a result', async () => {
  const s = session('py-state');
  const a = await cell(s, 'python', 'import math\nx = 20\ndef double(v):\n    return v * 2\nprint("set")');
  assert.equal(startOf(a).mode, 'kernel');
  assert.equal(a.stdout, 'set\n');
  assert.deepEqual(results(a.events), []);
  const b = await cell(s, 'python', 'x += 1\ndouble(x)');
  assert.equal(b.done.exit_code, 0, b.stderr);
  assert.deepEqual(results(b.events), [{ 'text/plain': '42', 'application/json': 42 }]);
  const c = await cell(s, 'python', 'print(math.floor(2.5))\n{"x": x, "items": [1, "two", None]}');
  assert.equal(c.stdout, '2\n');
  assert.deepEqual(results(c.events), [{ 'text/plain': "{'x': 21, 'items': [1, 'two', None]}", 'application/json': { x: 21, items: [1, 'two', null] } }]);
  // A trailing `;` suppresses it, as in Jupyter; a statement has no value.
  assert.deepEqual(results((await cell(s, 'python', 'x;')).events), []);
  assert.deepEqual(results((await cell(s, 'python', 'y = x')).events), []);
  // The session view lists the kernel.
  const view = (await (await fetch(`${server.url}/api/sessions/${s}`)).json()) as { kernels?: unknown };
  assert.ok(Array.isArray(view.kernels) && JSON.stringify(view.kernels).includes('python'), JSON.stringify(view));
});

test('javascript: let/const/functions persist across three executions; top-level await; the trailing expression is a result', async () => {
  const s = session('js-state');
  const a = await cell(s, 'javascript', 'let n = 20;\nconst double = (v) => v * 2;\nfunction hello(who) { return `hi ${who}`; }\nconsole.log("set");');
  assert.equal(startOf(a).mode, 'kernel');
  assert.equal(a.stdout, 'set\n', a.stderr);
  const b = await cell(s, 'javascript', 'n += 1;\nawait new Promise((r) => setTimeout(r, 50));\ndouble(n)');
  assert.equal(b.done.exit_code, 0, b.stderr);
  assert.deepEqual(results(b.events), [{ 'text/plain': '42', 'application/json': 42 }]);
  const c = await cell(s, 'javascript', 'console.log(hello("you"));\n({ n, list: [1, "two", null] })');
  assert.equal(c.stdout, 'hi you\n');
  assert.deepEqual(results(c.events), [{ 'text/plain': "{ n: 21, list: [ 1, 'two', null ] }", 'application/json': { n: 21, list: [1, 'two', null] } }]);
  // `;` ends every JavaScript statement: the value shows as in Node's REPL; `void` hides it.
  assert.deepEqual(results((await cell(s, 'javascript', 'n;')).events), [{ 'text/plain': '21', 'application/json': 21 }]);
  assert.deepEqual(results((await cell(s, 'javascript', 'void n')).events), []);
  // A timer the cell started runs before the cell ends, as in a script.
  const later = await cell(s, 'javascript', 'setTimeout(() => console.log("later"), 200);\nconsole.log("now");');
  assert.equal(later.stdout, 'now\nlater\n');
});

test('an exception prints its traceback on stderr, exits 1, and the kernel survives', async () => {
  const s = session('exc');
  await cell(s, 'python', 'kept = "yes"');
  const py = await cell(s, 'python', 'def f():\n    raise ValueError("boom")\nprint("before")\nf()');
  assert.equal(py.done.exit_code, 1);
  assert.equal(py.done.reason, 'exited');
  assert.equal(py.stdout, 'before\n');
  assert.match(py.stderr, /^Traceback \(most recent call last\):\n/);
  assert.match(py.stderr, /line 4, in <module>/);
  assert.match(py.stderr, /line 2, in f/);
  assert.match(py.stderr, /ValueError: boom\n$/);
  assert.doesNotMatch(py.stderr, /python_kernel/, 'the kernel\'s own frames are not shown');
  assert.deepEqual(results((await cell(s, 'python', 'kept')).events), [{ 'text/plain': "'yes'", 'application/json': 'yes' }]);
  // A syntax error too.
  const syntax = await cell(s, 'python', 'if True print(1)');
  assert.equal(syntax.done.exit_code, 1);
  assert.match(syntax.stderr, /SyntaxError/);

  const js = session('exc-js');
  await cell(js, 'javascript', 'const kept = "yes";');
  const thrown = await cell(js, 'javascript', 'console.log("before");\nthrow new Error("boom")');
  assert.equal(thrown.done.exit_code, 1);
  assert.equal(thrown.stdout, 'before\n');
  assert.match(thrown.stderr, /Error: boom/);
  const rejected = await cell(js, 'javascript', 'await Promise.reject(new TypeError("nope"))');
  assert.equal(rejected.done.exit_code, 1);
  assert.match(rejected.stderr, /TypeError: nope/);
  assert.deepEqual(results((await cell(js, 'javascript', 'kept')).events), [{ 'text/plain': "'yes'", 'application/json': 'yes' }]);
});

test('a timeout interrupts an endless loop (SIGINT) and the kernel keeps its variables', async () => {
  for (const [language, set, loop, get] of [
    ['python', 'counter = 7', 'while True:\n    counter += 0', 'counter'],
    ['javascript', 'var counter = 7;', 'while (true) { counter += 0; }', 'counter'],
  ] as const) {
    const s = session(`timeout-${language}`);
    await cell(s, language, set);
    const t0 = performance.now();
    const r = await cell(s, language, loop, { timeout: 1 });
    assert.equal(r.done.reason, 'timeout', `${language}: ${JSON.stringify(r.done)}`);
    assert.equal(r.done.kernel_restarted ?? false, false, language);
    assert.ok(performance.now() - t0 < 5000, `${language}: interrupted promptly`);
    assert.match(r.stderr, /KeyboardInterrupt|Interrupted/, language);
    const after = await cell(s, language, get);
    assert.equal(after.done.exit_code, 0, after.stderr);
    assert.deepEqual(results(after.events), [{ 'text/plain': '7', 'application/json': 7 }], language);
  }
});

test('a cell that ignores SIGINT costs a kernel restart, said in done; the next execution works on a fresh kernel', async () => {
  const s = session('restart-sigint');
  await cell(s, 'python', 'lost = 1');
  const r = await cell(s, 'python', 'import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint("stubborn", flush=True)\nwhile True:\n    time.sleep(0.05)', { timeout: 1 });
  assert.equal(r.done.reason, 'timeout');
  assert.equal(r.done.kernel_restarted, true);
  assert.equal(r.stdout, 'stubborn\n');
  assert.match(r.stderr, /restarted/);
  const next = await cell(s, 'python', 'print("fresh")\n"lost" in globals()');
  assert.equal(next.done.exit_code, 0, next.stderr);
  assert.equal(next.stdout, 'fresh\n');
  assert.deepEqual(results(next.events), [{ 'text/plain': 'False', 'application/json': false }]);
});

test('cancel interrupts the running cell and keeps the variables', async () => {
  const s = session('cancel');
  await cell(s, 'python', 'kept = 5');
  const res = await postJSON(`${server.url}/api/sessions/${s}/stream`, { language: 'python', code: 'import time\nprint("waiting", flush=True)\ntime.sleep(60)' });
  assert.equal(res.status, 200);
  let id: string | undefined;
  let cancelled = false;
  const events = await readSSE(res, (ev) => {
    if (ev.type === 'start') id = ev.execution_id;
    if (ev.type === 'stdout' && !cancelled) {
      cancelled = true;
      void postJSON(`${server.url}/api/executions/${id}/cancel`, {});
    }
  });
  const r = outcome(events);
  assert.equal(r.done.reason, 'cancelled');
  assert.equal(r.done.kernel_restarted ?? false, false);
  assert.deepEqual(results((await cell(s, 'python', 'kept')).events), [{ 'text/plain': '5', 'application/json': 5 }]);
});

test('POST /api/sessions/{id}/restart stops the kernels: variables go, files stay', async () => {
  const s = session('restart');
  await cell(s, 'python', 'v = 1\nopen("kept.txt", "w").write("file")');
  await cell(s, 'javascript', 'globalThis.v = 1;');
  const res = await postJSON(`${server.url}/api/sessions/${s}/restart`, {});
  assert.equal(res.status, 200);
  const body = (await res.json()) as { restarted?: string[] };
  assert.deepEqual([...(body.restarted ?? [])].sort(), ['javascript', 'python']);
  const py = await cell(s, 'python', 'print(open("kept.txt").read())\n"v" in globals()');
  assert.equal(py.stdout, 'file\n');
  assert.deepEqual(results(py.events), [{ 'text/plain': 'False', 'application/json': false }]);
  const js = await cell(s, 'javascript', 'typeof globalThis.v');
  assert.deepEqual(results(js.events), [{ 'text/plain': "'undefined'", 'application/json': 'undefined' }]);
  // Restarting a session that does not exist is NOT_FOUND.
  assert.equal((await postJSON(`${server.url}/api/sessions/k-nobody/restart`, {})).status, 404);
});

test('stdin: the body stdin reaches input(); interactive input waits for POST /stdin', async () => {
  const s = session('stdin');
  const given = await cell(s, 'python', 'a = input()\nb = input()\nprint(a.upper(), b)', { stdin: 'one\ntwo\n' });
  assert.equal(given.stdout, 'ONE two\n', given.stderr);
  const js = await cell(session('stdin-js'), 'javascript', 'let data = ""; for await (const c of process.stdin) data += c; data.trim().split("\\n").length', { stdin: 'a\nb\nc\n' });
  assert.deepEqual(results(js.events), [{ 'text/plain': '3', 'application/json': 3 }], js.stderr);

  const res = await postJSON(`${server.url}/api/sessions/${s}/stream`, { language: 'python', code: 'name = input("name? ")\nprint(f"hello {name}")' });
  let id: string | undefined;
  let sent = false;
  const t0 = performance.now();
  let sentAt = 0;
  const events = await readSSE(res, (ev) => {
    if (ev.type === 'start') id = ev.execution_id;
    if (ev.type === 'stdout' && ev.content.includes('name? ') && !sent) {
      sent = true;
      // The cell is blocked in input(): nothing else comes until the client answers.
      setTimeout(() => {
        sentAt = performance.now();
        void postJSON(`${server.url}/api/executions/${id}/stdin`, { data: 'Ada\n' }).then(async (r) => assert.equal(r.status, 202, await r.text()));
      }, 300);
    }
  });
  const r = outcome(events);
  assert.equal(r.stdout, 'name? hello Ada\n');
  assert.equal(r.done.exit_code, 0, r.stderr);
  const hello = r.events.find((e) => e.type === 'stdout' && e.content.includes('hello'));
  assert.ok(hello && hello.arrivedAt >= sentAt && sentAt - t0 >= 300);
  // Input sent at once, while a new session's kernel is still starting, is not lost.
  const fresh = await postJSON(`${server.url}/api/sessions/${session('stdin-early')}/stream`, { language: 'python', code: 'import sys\nprint(input().upper(), repr(sys.stdin.read()))' });
  const early = outcome(
    await readSSE(fresh, (ev) => {
      if (ev.type === 'start') void postJSON(`${server.url}/api/executions/${ev.execution_id}/stdin`, { data: 'fast\nrest', eof: true });
    }),
  );
  assert.equal(early.stdout, "FAST 'rest'\n", early.stderr);
  // The variable from that interactive cell persists like any other.
  assert.deepEqual(results((await cell(s, 'python', 'name')).events), [{ 'text/plain': "'Ada'", 'application/json': 'Ada' }]);
});

test('progress (a kernel global) arrives between the stdout printed around it, in order', async () => {
  for (const [language, code] of [
    ['python', 'import time\nprint("one")\nprogress(25, "Loading")\ntime.sleep(0.3)\nprint("two")\nprogress(75, "Almost", data={"step": 3})\ntime.sleep(0.3)\nprint("three")'],
    ['javascript', 'console.log("one");\nprogress(25, "Loading");\nawait new Promise((r) => setTimeout(r, 300));\nconsole.log("two");\nprogress(75, "Almost", { step: 3 });\nawait new Promise((r) => setTimeout(r, 300));\nconsole.log("three");'],
  ] as const) {
    const r = await cell(session(`progress-${language}`), language, code);
    assert.equal(r.done.exit_code, 0, r.stderr);
    const seen = r.events.filter((e) => e.type === 'stdout' || e.type === 'progress').map((e) => (e.type === 'stdout' ? e.content.trim() : `${e.percent}%`));
    assert.deepEqual(seen.filter((x) => x !== ''), ['one', '25%', 'two', '75%', 'three'], language);
    const p = r.events.find((e) => e.type === 'progress' && e.percent === 75);
    assert.ok(p?.type === 'progress');
    assert.equal(p.message, 'Almost');
    assert.deepEqual(p.data, { step: 3 });
  }
});

test('rich results: text/html from _repr_html_, image/png from a PIL image and a matplotlib figure', async (t: TestContext) => {
  const s = session('rich');
  const html = await cell(s, 'python', 'class Table:\n    def _repr_html_(self):\n        return "<table><tr><td>1</td></tr></table>"\nTable()');
  const [h] = results(html.events);
  assert.equal(h?.['text/html'], '<table><tr><td>1</td></tr></table>');
  assert.match(String(h?.['text/plain']), /Table object/);
  const explicit = await cell(s, 'python', 'from sluice import markdown\nresult(markdown("**hi**"))\nprint("after")');
  assert.equal(results(explicit.events)[0]?.['text/markdown'], '**hi**');
  assert.equal(explicit.stdout, 'after\n');

  for (const [lib, code] of [
    ['PIL', 'from PIL import Image\nImage.new("RGB", (8, 8), (255, 0, 0))'],
    ['matplotlib', 'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title("demo")\nplt.gcf()'],
  ] as const) {
    if (!hostHasPython(lib)) {
      t.diagnostic(`skipped ${lib}: python3 cannot import it here (apt-get install python3-${lib === 'PIL' ? 'pil' : 'matplotlib'})`);
      continue;
    }
    const r = await cell(s, 'python', code);
    assert.equal(r.done.exit_code, 0, r.stderr);
    const [img] = results(r.events);
    const png = Buffer.from(String(img?.['image/png'] ?? ''), 'base64');
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${lib}: a PNG`);
    if (lib === 'matplotlib') {
      assert.ok(png.length > 5000, `a real figure (${png.length} bytes)`);
      // plt.show() in a later cell shows the current figure the same way.
      const shown = await cell(s, 'python', 'plt.plot([2, 1])\nplt.show()');
      assert.ok(results(shown.events).some((d) => typeof d['image/png'] === 'string'), 'plt.show() gives a PNG result');
    }
  }
  // matplotlib's and fontconfig's caches go to /tmp, not the user's workspace.
  const ls = await cell(s, 'python', 'import os\nsorted(os.listdir("."))');
  assert.deepEqual(results(ls.events), [{ 'text/plain': '[]', 'application/json': [] }]);
});

function hostHasPython(module: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('output of subprocesses a cell starts is streamed; processes a cell leaves behind are gone when it ends', async () => {
  const s = session('children');
  const marker = `sluice-left-${process.pid}-${Date.now()}`;
  const py = await cell(
    s,
    'python',
    `import subprocess, os, time\nsubprocess.run(["echo", "from a child"])\nos.system("echo from a shell >&2")\nsubprocess.Popen(["bash", "-c", "exec -a ${marker} sleep 300"])\ntime.sleep(0.3)\nprint("running:", subprocess.run(["pgrep", "-f", "${marker}"], capture_output=True).returncode == 0)`,
  );
  assert.equal(py.done.exit_code, 0, py.stderr);
  assert.equal(py.stdout, 'from a child\nrunning: True\n');
  assert.equal(py.stderr, 'from a shell\n');
  await waitFor('the left-behind child to be killed', 5000, async () => ((await hostProcesses()).some((p) => p.args.includes(marker)) ? undefined : true));
  const js = await cell(s, 'javascript', 'require("child_process").execSync("echo from a node child", { stdio: "inherit" });');
  assert.equal(js.stdout, 'from a node child\n', js.stderr);
  // The kernel itself survived its cell's cleanup.
  assert.equal((await cell(s, 'python', 'print("still here")')).stdout, 'still here\n');
});

test('process mode is still a fresh interpreter; kernel mode for another language is INVALID_REQUEST', async () => {
  const s = session('process');
  await cell(s, 'python', 'x = 1', { mode: 'process' });
  const r = await cell(s, 'python', 'print("x" in globals())', { mode: 'process' });
  assert.equal(r.stdout, 'False\n');
  assert.equal(startOf(r).mode, 'process');
  const bad = await postJSON(`${server.url}/api/sessions/${s}/stream`, { language: 'bash', code: 'echo', mode: 'kernel' });
  assert.equal(bad.status, 400);
  const body = (await bad.json()) as { error?: { code?: string; message?: string } };
  assert.equal(body.error?.code, 'INVALID_REQUEST');
  assert.match(body.error?.message ?? '', /kernel/);
});

test('a run\'s env applies to its cell only', async () => {
  for (const [language, read] of [
    ['python', 'import os\nos.environ.get("GREETING", "unset")'],
    ['javascript', 'process.env.GREETING ?? "unset"'],
  ] as const) {
    const s = session(`env-${language}`);
    const set = await cell(s, language, read, { env: { GREETING: 'hello' } });
    assert.deepEqual(results(set.events), [{ 'text/plain': language === 'python' ? "'hello'" : "'hello'", 'application/json': 'hello' }], set.stderr);
    const unset = await cell(s, language, read);
    assert.deepEqual(results(unset.events), [{ 'text/plain': "'unset'", 'application/json': 'unset' }], language);
  }
});

test('process.exit() in a JavaScript cell ends the kernel with the cell; the next one starts fresh', async () => {
  const s = session('exit');
  await cell(s, 'javascript', 'var state = 1;');
  const r = await cell(s, 'javascript', 'console.log("bye");\nprocess.exit(3)');
  assert.equal(r.done.exit_code, 3);
  assert.equal(r.done.kernel_restarted, true);
  assert.equal(r.stdout, 'bye\n');
  const next = await cell(s, 'javascript', 'typeof state');
  assert.equal(next.done.kernel_restarted ?? false, false);
  assert.deepEqual(results(next.events), [{ 'text/plain': "'undefined'", 'application/json': 'undefined' }]);
  // Python's sys.exit() ends the cell, not the kernel.
  await cell(s, 'python', 'kept = 1');
  const py = await cell(s, 'python', 'import sys\nsys.exit(4)');
  assert.equal(py.done.exit_code, 4);
  assert.equal(py.done.kernel_restarted ?? false, false);
  assert.deepEqual(results((await cell(s, 'python', 'kept')).events), [{ 'text/plain': '1', 'application/json': 1 }]);
});

test('a cell that uses up every file descriptor does not take the kernel down', async () => {
  const s = session('fds');
  await cell(s, 'python', 'kept = 1');
  const r = await cell(s, 'python', 'held = []\ntry:\n    while True:\n        held.append(open("/dev/null"))\nexcept OSError as e:\n    print(e.errno)');
  assert.equal(r.stdout, '24\n', r.stderr);
  assert.equal(r.done.kernel_restarted ?? false, false, r.stderr);
  assert.deepEqual(results((await cell(s, 'python', 'held.clear()\nkept')).events), [{ 'text/plain': '1', 'application/json': 1 }]);
});

test('a memory bomb in a cell: the kernel is killed at the limit, done says memory_limit and kernel_restarted; the next cell works', async () => {
  const s = session('oom');
  const res = await postJSON(`${server.url}/api/sessions`, { id: s, limits: { memory_bytes: 128 * 1024 * 1024 } });
  assert.equal(res.status, 201, await res.text());
  await cell(s, 'python', 'kept = 1');
  const r = await cell(s, 'python', 'hog = []\nwhile True:\n    hog.append(bytearray(16 << 20))');
  assert.equal(r.done.reason, 'memory_limit', JSON.stringify(r.done));
  assert.equal(r.done.kernel_restarted, true);
  assert.match(r.stderr, /memory limit/);
  const next = await cell(s, 'python', '"kept" in globals()');
  assert.deepEqual(results(next.events), [{ 'text/plain': 'False', 'application/json': false }]);
});

test('deleting a session stops its kernel processes', async () => {
  const s = session('delete');
  // The session's own kernel, by its uid (pre-started kernels of the pool come and go beside it).
  const mark = `.kernel-${s}`;
  const r = await cell(s, 'python', `open("/workspace/${mark}", "w").close()`);
  assert.equal(r.done.exit_code, 0, r.stderr);
  const root = join(server.dataDir, 'workspaces');
  let uid = -1;
  for (const dir of await readdir(root)) {
    const ws = join(root, dir, 'ws');
    if (await stat(join(ws, mark)).then(() => true, () => false)) uid = (await stat(ws)).uid;
  }
  const kernelOf = async (): Promise<boolean> => (await hostProcesses()).some((p) => p.uid === uid && p.args.includes('python_kernel.py'));
  assert.ok(await kernelOf(), `the kernel runs as the session's uid ${uid}`);
  assert.equal((await fetch(`${server.url}/api/sessions/${s}`, { method: 'DELETE' })).status, 204);
  await waitFor('the kernel to be gone', 5000, async () => ((await kernelOf()) ? undefined : true));
});

test('SLUICE_MAX_KERNELS: past the cap the least recently used idle kernel is stopped, and its next cell says so', async () => {
  const small = await startServer({ SLUICE_MAX_KERNELS: '1' });
  try {
    const a = await runStream(small.url, 'lru-a', { language: 'python', code: 'x = 1' });
    assert.equal(a.done.exit_code, 0, a.stderr);
    const b = await runStream(small.url, 'lru-b', { language: 'python', code: 'y = 2' });
    assert.equal(b.done.exit_code, 0, b.stderr);
    const view = (await (await fetch(`${small.url}/api/sessions/lru-a`)).json()) as { kernels?: unknown[] };
    assert.deepEqual(view.kernels, [], 'a\'s kernel was stopped to make room for b\'s');
    const again = await runStream(small.url, 'lru-a', { language: 'python', code: '"x" in globals()' });
    assert.match(again.stderr, /SLUICE_MAX_KERNELS/);
    assert.deepEqual(results(again.events), [{ 'text/plain': 'False', 'application/json': false }]);
  } finally {
    await small.stop();
  }
});

test('stdin a kernel cell does not read is bounded: past about 1 MiB unread the server answers RATE_LIMITED', async () => {
  const s = session('stdin-bound');
  await cell(s, 'python', 'x = 1');
  const res = await postJSON(`${server.url}/api/sessions/${s}/stream`, { language: 'python', code: 'import time, sys\nprint("sleeping", flush=True)\ntime.sleep(3)\nprint(len(sys.stdin.read()))' });
  const statuses: number[] = [];
  let accepted = 0;
  let startID = '';
  const events = await readSSE(res, (ev) => {
    if (ev.type === 'stdout' && ev.content.startsWith('sleeping')) {
      void (async () => {
        const piece = 'y'.repeat(512 * 1024);
        for (let i = 0; i < 12; i++) {
          const r = await postJSON(`${server.url}/api/executions/${startID}/stdin`, { data: piece });
          statuses.push(r.status);
          await r.body?.cancel();
          if (r.status === 202) accepted += piece.length;
          if (r.status === 429) break;
        }
        await (await postJSON(`${server.url}/api/executions/${startID}/stdin`, { eof: true })).body?.cancel();
      })();
    }
    if (ev.type === 'start') startID = ev.execution_id;
  });
  const r = outcome(events);
  assert.ok(statuses.includes(429), `RATE_LIMITED came: ${statuses.join(' ')}`);
  assert.ok(accepted <= 4 * 1024 * 1024, `at most a few MiB taken while the cell slept: ${accepted}`);
  // Everything accepted reached the cell.
  assert.equal(r.stdout, `sleeping\n${accepted}\n`, r.stderr);
});

// A cell ends when its fence (which carries its end) is placed on the events socket: a cell whose
// last events are big (read a slice per turn) still has every event and byte before `done`.
test('a kernel cell whose trailing result is big has it (and all its output) before done', async () => {
  // ~1 MiB of text/plain (the helpers' cap), then a second cell to check the acknowledgements add up.
  const code = 'print("before")\n"x" * (3 << 20)';
  for (let i = 0; i < 3; i++) {
    const events = await stream(server.url, 'fence-big', { code, language: 'python', mode: 'kernel' });
    assertContiguous(events);
    const done = doneOf(events);
    assert.equal(done.reason, 'exited');
    assert.equal(done.exit_code, 0);
    const result = events.find((e) => e.type === 'result');
    assert.ok(result, 'no result event');
    const plain = result.data['text/plain'];
    assert.ok(typeof plain === 'string' && plain.length > 512 * 1024, 'the result lost its text');
    assert.equal(text(events, 'stdout'), 'before\n');
    assert.ok(result.seq < done.seq);
  }
  // Progress from the helpers still waits for its own answer, in order with the output.
  const events = await stream(server.url, 'fence-big', { code: 'progress(1)\nprint("a")\nprogress(2)\n2 + 2', language: 'python', mode: 'kernel' });
  assert.deepEqual(
    events.filter((e) => e.type !== 'start' && e.type !== 'done').map((e) => (e.type === 'stdout' ? e.content : e.type === 'progress' ? `p${e.percent}` : e.type)),
    ['p1', 'a\n', 'p2', 'result'],
  );
});
