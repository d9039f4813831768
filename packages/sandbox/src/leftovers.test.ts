/**
 * The kernels' walk for a cell's leftover processes, on its own: runtime/kernels/leftovers.js
 * (JavaScript kernel) and sluice_leftovers.py (Python kernel), each loaded by a small program
 * in its own language that starts a process tree, lists the strays, kills them and lists again.
 * Only the descendants scope (SLUICE_KERNEL_SCOPE=descendants) can run outside a sandbox: the
 * namespace scope kills everything in the PID namespace but the kernel's ancestors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KERNELS = fileURLToPath(new URL('../runtime/kernels', import.meta.url));

/**
 * The tree under the program, besides one direct child that exits at once (a zombie: the
 * program does not reap it): `a`, a shell that becomes `sleep` (which reaps nothing), with
 * children s1 (alive), z1 (exits: a zombie under a) and b (a shell), whose child is s2.
 */
const TREE = [
  'sleep 30 & echo s1 $!',
  'sleep 0.5 & echo z1 $!',
  "sh -c 'sleep 30 & echo s2 $!; wait' & echo b $!",
  'exec sleep 30',
].join('\n');

type Name = 'a' | 's1' | 'z1' | 'b' | 's2' | 'd';

interface Report {
  pid: number;
  scope: string;
  tree: Record<Name, number>;
  /** liveStrays() before the kill and after it. */
  before: number[];
  after: number[];
}

// Both programs: start the tree, wait (bounded) until it is complete and the zombies are
// zombies, without ever reaping a child, then list, kill and list again; one JSON line out.
// They do not clean up after themselves: what the kill missed must still be there to be seen.
const NODE_PROGRAM = String.raw`
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const L = require(process.env.LEFTOVERS_MODULE);
L.takeReserve();
const file = process.env.TREE_FILE;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const state = (pid) => {
  try {
    const t = fs.readFileSync('/proc/' + pid + '/stat', 'latin1');
    return t.slice(t.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
};
const until = (what, ok) => {
  const deadline = Date.now() + 20000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    Atomics.wait(sleeper, 0, 0, 5);
  }
};
const out = fs.openSync(file, 'a');
const a = spawn('/bin/sh', ['-c', process.env.TREE], { stdio: ['ignore', out, 'inherit'] });
const d = spawn('/bin/true', [], { stdio: 'ignore' });
let tree;
until('the tree', () => {
  const got = Object.fromEntries(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]));
  tree = { a: a.pid, ...got, d: d.pid };
  return ['s1', 'z1', 'b', 's2'].every((k) => k in got);
});
until('the zombies', () => state(tree.z1) === 'Z' && state(tree.d) === 'Z');
const before = L.liveStrays();
L.killStrays();
const after = L.liveStrays();
fs.writeSync(1, JSON.stringify({ pid: process.pid, scope: L.SCOPE, tree, before, after }) + '\n');
process.exit(0);
`;

const PYTHON_PROGRAM = String.raw`
import json, os, subprocess, time
import sluice_leftovers as L
L.Reserve.take()
file = os.environ["TREE_FILE"]

def state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            t = f.read()
        return t[t.rfind(b")") + 2 :].split()[0].decode()
    except OSError:
        return None

def until(what, ok):
    deadline = time.monotonic() + 20
    while not ok():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.005)

with open(file, "ab") as out:
    a = subprocess.Popen(["/bin/sh", "-c", os.environ["TREE"]], stdin=subprocess.DEVNULL, stdout=out)
d = subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
tree = {}

def complete():
    with open(file) as f:
        got = {l.split()[0]: int(l.split()[1]) for l in f if l.strip()}
    tree.update(a=a.pid, d=d.pid, **got)
    return all(k in got for k in ("s1", "z1", "b", "s2"))

until("the tree", complete)
until("the zombies", lambda: state(tree["z1"]) == "Z" and state(tree["d"]) == "Z")
before = L.live_strays()
L.kill_strays()
after = L.live_strays()
os.write(1, (json.dumps({"pid": os.getpid(), "scope": L.SCOPE, "tree": tree, "before": before, "after": after}) + "\n").encode())
os._exit(0)
`;

/** Runs one language's program and returns its report. */
async function walk(language: 'javascript' | 'python'): Promise<Report> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-leftovers-test-'));
  try {
    const [cmd, args] = language === 'python' ? ['/usr/bin/python3', ['-c', PYTHON_PROGRAM]] : [process.execPath, ['-e', NODE_PROGRAM]];
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        SLUICE_KERNEL_SCOPE: 'descendants',
        LEFTOVERS_MODULE: join(KERNELS, 'leftovers.js'),
        PYTHONPATH: KERNELS,
        PYTHONDONTWRITEBYTECODE: '1',
        TREE_FILE: join(dir, 'tree'),
        TREE,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    assert.equal(code, 0, `the ${language} program failed: ${stderr}`);
    return JSON.parse(stdout) as Report;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The state letter of a process (R, S, Z…), or null when it is gone. */
async function stateOf(pid: number): Promise<string | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Polls until every one of `pids` is gone or a zombie, or `ms` pass; returns those still alive. */
async function survivors(pids: number[], ms = 10_000): Promise<Array<[number, string]>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const alive: Array<[number, string]> = [];
    for (const pid of pids) {
      const st = await stateOf(pid);
      if (st !== null && st !== 'Z') alive.push([pid, st]);
    }
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const language of ['javascript', 'python'] as const) {
  test(`${language}: the walk finds the descendants, skips zombies, and the kill leaves none alive`, async () => {
    const { scope, tree, before, after } = await walk(language);
    const live = [tree.a, tree.s1, tree.b, tree.s2];
    try {
      assert.equal(scope, 'descendants');
      const sorted = (pids: number[]): number[] => [...pids].sort((x, y) => x - y);
      assert.deepEqual(sorted(before), sorted(live), `the live descendants of ${JSON.stringify(tree)}`);
      assert.ok(!before.includes(tree.z1) && !before.includes(tree.d), 'zombies are not listed');
      assert.deepEqual(after, [], 'nothing is listed after the kill');
      // A killed process may still be on its way out (R) for a moment; none may stay alive.
      assert.deepEqual(await survivors(live), [], `alive after the kill, of ${JSON.stringify(tree)}`);
    } finally {
      for (const pid of live) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
    }
  });
}
