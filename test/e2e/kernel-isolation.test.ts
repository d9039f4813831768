/**
 * A kernel cell cannot lie about its end or leak into later cells (real server, real sandboxes):
 * threads and callbacks that outlive their cell are waited for (as a script would) or marked as
 * background output, never mixed into a later cell's stdout; a cell that forges the kernel's
 * `cell_done`, patches `json`, or closes or redirects its stdout does not end early or silence
 * later cells.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { runStream, type RunOutcome } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

let sessions = 0;
function session(name: string): string {
  return `kiso-${name}-${++sessions}`;
}

function cell(s: string, language: 'python' | 'javascript', code: string, timeout = 30): Promise<RunOutcome> {
  return runStream(server.url, s, { language, code, timeout });
}

/** Polls `fn` until it returns true or the deadline passes. */
async function eventually(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('python: a cell waits for the non-daemon threads it started, as a script would', async () => {
  const s = session('py-join');
  const r = await cell(s, 'python', 'import threading, time\ndef late():\n    time.sleep(0.5)\n    print("from the thread")\nthreading.Thread(target=late).start()\nprint("main done")');
  assert.equal(r.stdout, 'main done\nfrom the thread\n');
  assert.equal(r.done.exit_code, 0);
  assert.ok(r.done.duration_ms >= 500, `done came after the thread: ${r.done.duration_ms} ms`);
});

test('python: a daemon thread that prints after its cell ends is marked as background output, never a later cell\'s stdout', async () => {
  const s = session('py-daemon');
  const a = await cell(s, 'python', 'import threading, time\ndef loop():\n    for i in range(1000):\n        print("tick", i)\n        time.sleep(0.05)\nthreading.Thread(target=loop, daemon=True).start()\ntime.sleep(0.12)');
  assert.match(a.stdout, /^tick 0\n/);
  // Later cells: their stdout is only their own; the thread's lines arrive marked on stderr.
  let marked = '';
  await eventually('marked background output', 10_000, async () => {
    const b = await cell(s, 'python', 'import time\ntime.sleep(0.3)\nprint("own")');
    assert.equal(b.stdout, 'own\n', 'a later cell\'s stdout is its own');
    marked += b.stderr;
    return /\[background stdout\] tick \d+/.test(b.stderr);
  });
  assert.doesNotMatch(marked.replace(/\[background stdout\] tick \d+\n/g, '').replace(/sluice: output written by an earlier cell.*\n/g, ''), /tick/);
});

test('javascript: an unref\'d timer that fires after its cell is marked as background output in a later cell', async () => {
  const s = session('js-unref');
  const a = await cell(s, 'javascript', 'setInterval(() => console.log("tick"), 50).unref(); console.log("started")');
  assert.equal(a.stdout, 'started\n');
  let seen = false;
  await eventually('marked background output', 10_000, async () => {
    const b = await cell(s, 'javascript', 'await new Promise((r) => setTimeout(r, 300)); console.log("own")');
    assert.equal(b.stdout, 'own\n', 'a later cell\'s stdout is its own');
    seen = /\[background stdout\] tick/.test(b.stderr);
    return seen;
  });
  assert.ok(seen);
});

test('javascript: an unref\'d Worker that prints after its cell is marked as background output', async () => {
  const s = session('js-worker');
  const a = await cell(
    s,
    'javascript',
    "const { Worker } = require('node:worker_threads');\nconst w = new Worker('setInterval(() => console.log(\"from worker\"), 50)', { eval: true });\nw.unref();\nconsole.log('started')",
  );
  assert.equal(a.stdout, 'started\n');
  await eventually('marked worker output', 10_000, async () => {
    const b = await cell(s, 'javascript', 'await new Promise((r) => setTimeout(r, 300)); console.log("own")');
    assert.equal(b.stdout, 'own\n', 'a later cell\'s stdout is its own');
    return /\[background stdout\] from worker/.test(b.stderr);
  });
});

test('python: a cell that finds its nonce on the stack and forges cell_done does not end early', async () => {
  const s = session('py-forge');
  // Everything a cell can easily reach: every frame's locals and globals, the environment, and
  // every fd it can write to, with every 32-hex string it finds.
  const forge = [
    'import os, re, sys, time, json',
    'found = set()',
    'def scan(v, depth=0):',
    '    if isinstance(v, str):',
    '        found.update(re.findall(r"[0-9a-f]{32}", v))',
    '    elif isinstance(v, (bytes, bytearray)):',
    '        found.update(x.decode() for x in re.findall(rb"[0-9a-f]{32}", bytes(v)))',
    '    elif isinstance(v, dict) and depth < 2:',
    '        for x in list(v.values()): scan(x, depth + 1)',
    '    elif isinstance(v, (list, tuple)) and depth < 2:',
    '        for x in v: scan(x, depth + 1)',
    'for f in list(sys._current_frames().values()):',
    '    while f is not None:',
    '        scan(f.f_locals)',
    '        f = f.f_back',
    'scan(dict(os.environ))',
    'lines = b"".join(json.dumps({"type": "sluice.cell_done", "nonce": n, "status": "ok", "exit_code": 0}).encode() + b"\\n" for n in found)',
    // The end-of-cell markers an earlier kernel protocol looked for on stdout and stderr.
    'for n in found:',
    '    for fd in (1, 2):',
    '        os.write(fd, ("\\x1esluice:%s\\x1e" % n).encode())',
    'for fd in range(3, 1024):',
    '    try:',
    '        os.write(fd, lines or b\'{"type":"sluice.cell_done","nonce":"00","status":"ok","exit_code":0}\\n\')',
    '    except OSError:',
    '        pass',
    'print("nonces found:", len(found) > 0)',
    'time.sleep(2)',
    'print("still running")',
  ].join('\n');
  const r = await cell(s, 'python', forge);
  assert.match(r.stdout, /nonces found: (True|False)\n(.|\n)*still running\n$/, `the cell's own output is in its log: ${r.stderr}`);
  assert.ok(r.done.duration_ms >= 2000, `done came after the cell ended: ${r.done.duration_ms} ms`);
  const next = await cell(s, 'python', 'print("next")');
  assert.equal(next.stdout, 'next\n');
});

// Only sockets: garbage in the interpreter's own eventfds and pipes crashes it (a truthful end,
// `signaled` with kernel_restarted), which is no forgery.
test('javascript: a forged cell_done on every socket does not end the cell early', async () => {
  const s = session('js-forge');
  const r = await cell(
    s,
    'javascript',
    "const fs = require('node:fs');\nfor (let fd = 3; fd < 64; fd++) { try { if (fs.fstatSync(fd).isSocket()) fs.writeSync(fd, '{\"type\":\"sluice.cell_done\",\"nonce\":\"00\",\"status\":\"ok\",\"exit_code\":0}\\n'); } catch {} }\nawait new Promise((r) => setTimeout(r, 1000));\nconsole.log('still running');",
  );
  assert.equal(r.stdout, 'still running\n', r.stderr);
  assert.ok(r.done.duration_ms >= 1000, `done came after the cell ended: ${r.done.duration_ms} ms`);
});

for (const [name, code] of [
  ['closes fd 1', 'import os\nos.close(1)'],
  ['redirects fd 1 to a file', 'import os\nfd = os.open("/tmp/elsewhere", os.O_WRONLY | os.O_CREAT)\nos.dup2(fd, 1)'],
  ['closes fd 2', 'import os\nos.close(2)'],
] as const) {
  test(`python: a cell that ${name} gets the kernel restarted, said so, and later cells print`, async () => {
    const s = session('py-stdio');
    await cell(s, 'python', 'x = 1');
    const a = await cell(s, 'python', code);
    assert.equal(a.done.kernel_restarted, true, JSON.stringify(a.done));
    assert.match(a.stderr, /closed or redirected the kernel's std(out|err).*restarted/);
    const b = await cell(s, 'python', 'print("after")');
    assert.equal(b.stdout, 'after\n');
    assert.ok(b.done.duration_ms < 10_000);
  });
}

test('javascript: a cell that closes fd 1 gets the kernel restarted, and later cells print', async () => {
  const s = session('js-stdio');
  const a = await cell(s, 'javascript', "require('node:fs').closeSync(1)");
  assert.equal(a.done.kernel_restarted, true, JSON.stringify(a.done));
  const b = await cell(s, 'javascript', 'console.log("after")');
  assert.equal(b.stdout, 'after\n');
});

test('python: a cell that patches json, os.write and threading does not break the kernel', async () => {
  const s = session('py-json');
  const a = await cell(s, 'python', 'import json, os, threading\ndef boom(*a, **k):\n    raise RuntimeError("patched")\njson.dumps = json.loads = boom\njson.encoder.c_make_encoder = None\nprint("patched")');
  assert.equal(a.stdout, 'patched\n');
  assert.equal(a.done.exit_code, 0);
  assert.equal(a.done.reason, 'exited');
  const b = await cell(s, 'python', 'print("next")\n21 * 2');
  assert.equal(b.stdout, 'next\n');
  assert.equal(b.done.reason, 'exited');
  assert.equal(b.done.exit_code, 0, b.stderr);
});

test('javascript: a cell that patches JSON does not break the kernel', async () => {
  const s = session('js-json');
  const a = await cell(s, 'javascript', 'JSON.stringify = () => { throw new Error("patched"); }; JSON.parse = JSON.stringify; console.log("patched")');
  assert.equal(a.stdout, 'patched\n');
  assert.equal(a.done.reason, 'exited');
  const b = await cell(s, 'javascript', 'console.log("next")');
  assert.equal(b.stdout, 'next\n');
  assert.equal(b.done.exit_code, 0, b.stderr);
});
