/**
 * The kernel scripts' protocol, driven directly over their pipes (no server, no sandbox): what
 * the server's kernel client relies on. End-to-end behaviour is in test/e2e/kernels.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { spawnKernelOnPipes, stopKernelOnPipes } from './kernel-pipes.test-helper.js';

type Message = Record<string, unknown> & { type: string };

/** Polls `cond` until it holds or `ms` pass (generous: the machine is shared and loaded). */
async function until(cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

class Driver {
  private readonly child: ChildProcess;
  private readonly messages: Message[] = [];
  private waiter: (() => void) | null = null;
  readonly out = { stdout: '', stderr: '' };
  private constructor(child: ChildProcess, readonly dir: string) {
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (t: string) => (this.out.stdout += t));
    child.stderr?.setEncoding('utf8').on('data', (t: string) => (this.out.stderr += t));
    // Events (fd 3) and the kernel's own messages (the control socket, fd 4) in one list, in the
    // kernel's order: a fence that carries a cell's end (the Python kernel's) stands for that
    // cell's cell_done, as the server takes it. Lines are taken in the check phase, like the
    // server does, so output read in the same poll is in first; sync lines are answered as the
    // server answers them.
    const events = child.stdio[3] as Readable & Writable;
    events.on('error', () => {});
    this.lines(events, (m) => {
      if (m['sync'] === true) events.write(Buffer.from([6]));
      delete m['sync'];
      if (m.type !== 'sync') this.messages.push(m);
      else if (typeof m['done'] === 'object' && m['done'] !== null) this.messages.push({ ...(m['done'] as Message), type: 'sluice.cell_done', nonce: m['fence'] });
    });
    this.lines(child.stdio[4] as Readable, (m) => this.messages.push(m));
    // A kernel that died (or was killed) closes its control pipe: a write then fails with EPIPE,
    // which the test sees as missing messages and the kernel's stderr, not as a crash of the runner.
    (child.stdio[4] as Writable).on('error', (e: Error) => (this.out.stderr += `\n[control pipe: ${e.message}]`));
  }

  private lines(stream: Readable, onMessage: (m: Message) => void): void {
    let buf = '';
    stream.setEncoding('utf8').on('data', (t: string) => {
      buf += t;
      setImmediate(() => {
        let nl;
        while ((nl = buf.indexOf('\n')) !== -1) {
          onMessage(JSON.parse(buf.slice(0, nl)) as Message);
          buf = buf.slice(nl + 1);
        }
        this.waiter?.();
      });
    });
  }

  static async start(language: 'python' | 'javascript'): Promise<Driver> {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-kernel-test-'));
    const child = spawnKernelOnPipes(language, dir);
    const d = new Driver(child, dir);
    try {
      await d.next((m) => m.type === 'sluice.kernel_ready');
    } catch (err) {
      // The test never gets the driver to stop: kill the kernel and remove its directory here.
      await d.stop();
      throw err;
    }
    return d;
  }

  send(msg: Record<string, unknown>): void {
    (this.child.stdio[4] as Writable).write(`${JSON.stringify(msg)}\n`);
  }

  /** Waits for (and consumes up to) the first message matching `pred`; returns those before it too. */
  async next(pred: (m: Message) => boolean, ms = 30_000): Promise<Message[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.messages.findIndex(pred);
      if (i !== -1) return this.messages.splice(0, i + 1);
      if (Date.now() > deadline) throw new Error(`no matching message in ${ms} ms; stderr: ${this.out.stderr}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
    }
  }

  private nonces = 0;
  /** Runs a cell; resolves with its messages (cell_done last) and the output it wrote. */
  async cell(code: string, extra: Record<string, unknown> = {}): Promise<{ messages: Message[]; done: Message; stdout: string; stderr: string }> {
    const nonce = (++this.nonces).toString(16).padStart(32, '0');
    const o = { stdout: this.out.stdout.length, stderr: this.out.stderr.length };
    this.send({ type: 'execute', nonce, code, ...extra });
    const messages = await this.next((m) => m.type === 'sluice.cell_done' && m['nonce'] === nonce);
    const done = messages[messages.length - 1] as Message;
    return { messages, done, stdout: this.out.stdout.slice(o.stdout), stderr: this.out.stderr.slice(o.stderr) };
  }

  /** Bytes written to the control pipe that the kernel has not read. */
  controlBacklog(): number {
    return (this.child.stdio[4] as Writable).writableLength;
  }

  signal(s: NodeJS.Signals): void {
    this.child.kill(s);
  }

  stop(): Promise<void> {
    return stopKernelOnPipes(this.child, this.dir);
  }
}

const results = (messages: Message[]): unknown[] => messages.filter((m) => m.type === 'result').map((m) => m['data']);

test('python kernel: a process forked by a cell ends with its copy of the cell and never acts as the kernel', async () => {
  const k = await Driver.start('python');
  try {
    const r = await k.cell('import os, time\npid = os.fork()\nif pid == 0:\n    print("child")\nelse:\n    os.waitpid(pid, 0)\n    time.sleep(0.1)\n    print("parent")');
    assert.equal(r.stdout, 'child\nparent\n');
    assert.equal(r.done['status'], 'ok');
    // Exactly one cell_done for that cell, and the kernel still answers.
    assert.deepEqual(results((await k.cell('1 + 1')).messages), [{ 'text/plain': '2', 'application/json': 2 }]);
  } finally {
    await k.stop();
  }
});

for (const language of ['python', 'javascript'] as const) {
  const py = language === 'python';

  test(`${language} kernel: state across cells, results, output before cell_done, errors the kernel survives`, async () => {
    const k = await Driver.start(language);
    try {
      const a = await k.cell(py ? 'x = 20\nprint("set")' : 'var x = 20; console.log("set")');
      assert.deepEqual(a.done, { type: 'sluice.cell_done', nonce: a.done['nonce'], status: 'ok', exit_code: 0 });
      assert.equal(a.stdout, 'set\n');
      const b = await k.cell('x + 22');
      assert.deepEqual(results(b.messages), [{ 'text/plain': '42', 'application/json': 42 }]);
      const c = await k.cell(py ? 'raise ValueError("boom")' : 'throw new Error("boom")');
      assert.equal(c.done['status'], 'error');
      assert.equal(c.done['exit_code'], 1);
      assert.match(c.stderr, /boom/);
      assert.deepEqual(results((await k.cell('x')).messages), [{ 'text/plain': '20', 'application/json': 20 }]);
    } finally {
      await k.stop();
    }
  });

  test(`${language} kernel: progress and explicit results are events, in order with cell_done last`, async () => {
    const k = await Driver.start(language);
    try {
      const r = await k.cell(py ? 'progress(10, "a")\nresult({"k": 1})\nprogress(percent=90)' : 'progress(10, "a"); result({ k: 1 }); progress(90);');
      assert.deepEqual(
        r.messages.map((m) => m.type),
        ['progress', 'result', 'progress', 'sluice.cell_done'],
      );
      assert.equal(r.messages[0]?.['percent'], 10);
      assert.equal(r.messages[0]?.['message'], 'a');
    } finally {
      await k.stop();
    }
  });

  test(`${language} kernel: stdin from the execute message and from stdin messages; env for one cell`, async () => {
    const k = await Driver.start(language);
    try {
      const read = py ? 'print(input().upper())' : 'const rl = require("readline").createInterface({ input: process.stdin }); for await (const l of rl) { console.log(l.toUpperCase()); break; }';
      assert.equal((await k.cell(read, { stdin: 'given\n', stdin_eof: true })).stdout, 'GIVEN\n');
      const nonce = 'f'.repeat(32);
      const o = k.out.stdout.length;
      k.send({ type: 'execute', nonce, code: read });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(k.out.stdout.length, o, 'the cell waits for input');
      k.send({ type: 'stdin', data: 'later\n' });
      await k.next((m) => m.type === 'sluice.cell_done' && m['nonce'] === nonce);
      assert.ok(k.out.stdout.slice(o).startsWith('LATER\n'));

      const env = py ? 'import os\nos.environ.get("ONLY", "unset")' : 'process.env.ONLY ?? "unset"';
      assert.deepEqual(results((await k.cell(env, { env: { ONLY: 'here' } })).messages), [{ 'text/plain': "'here'", 'application/json': 'here' }]);
      assert.deepEqual(results((await k.cell(env)).messages), [{ 'text/plain': "'unset'", 'application/json': 'unset' }]);
    } finally {
      await k.stop();
    }
  });

  test(`${language} kernel: unread stdin stays bounded (the kernel stops reading control), and all of it arrives`, async () => {
    const k = await Driver.start(language);
    try {
      const nonce = 'd'.repeat(32);
      // The cell reads nothing until the test creates `go` in its directory (not after a fixed
      // sleep, which a loaded machine can outlast before the test looks).
      const code = py
        ? 'import os, sys, time\nwhile not os.path.exists("go"): time.sleep(0.02)\nprint(len(sys.stdin.read()))'
        : 'const fs = require("fs");\nwhile (!fs.existsSync("go")) await new Promise((r) => setTimeout(r, 20));\nlet n = 0;\nfor await (const c of process.stdin) n += c.length;\nconsole.log(n);';
      const o = k.out.stdout.length;
      k.send({ type: 'execute', nonce, code });
      const piece = 'x'.repeat(1 << 20);
      for (let i = 0; i < 4; i++) k.send({ type: 'stdin', data: piece });
      k.send({ type: 'stdin_eof' });
      // Wait until the kernel has started taking stdin off the pipe and then stopped (the backlog
      // holds still for half a second): what it took then is all it will take while the cell waits.
      const atFirst = k.controlBacklog();
      assert.ok(await until(() => k.controlBacklog() < atFirst), `the kernel reads the control pipe: ${k.controlBacklog()} bytes wait`);
      let last = -1;
      let since = Date.now();
      const still = await until(() => {
        const now = k.controlBacklog();
        if (now !== last) [last, since] = [now, Date.now()];
        return Date.now() - since >= 500;
      });
      assert.ok(still, 'the backlog stops changing');
      // 4 MiB sent, the cell reads nothing yet: the kernel took at most ~2 MiB (1 MiB held plus
      // the message that passed it), the rest waits on the writer's side.
      assert.ok(k.controlBacklog() > 1 << 20, `the kernel stopped reading: ${k.controlBacklog()} bytes wait`);
      await writeFile(join(k.dir, 'go'), '');
      await k.next((m) => m.type === 'sluice.cell_done' && m['nonce'] === nonce, 60_000);
      assert.ok(k.out.stdout.slice(o).startsWith(`${4 << 20}\n`), k.out.stdout.slice(o, o + 80));
      assert.equal(k.controlBacklog(), 0);
    } finally {
      await k.stop();
    }
  });

  test(`${language} kernel: SIGINT interrupts a busy cell (status interrupted, 130) and is ignored between cells`, async () => {
    const k = await Driver.start(language);
    try {
      await k.cell(py ? 'kept = 1' : 'var kept = 1;');
      k.signal('SIGINT'); // between cells: nothing happens
      await new Promise((r) => setTimeout(r, 100));
      const nonce = 'e'.repeat(32);
      // The cell says it is busy (a progress event) before it spins: the SIGINT must reach the
      // cell, not the gap before it, however long the kernel takes to start it.
      k.send({ type: 'execute', nonce, code: py ? 'progress(1)\nwhile True: pass' : 'progress(1); while (true) {}' });
      await k.next((m) => m.type === 'progress');
      k.signal('SIGINT');
      const [done] = (await k.next((m) => m.type === 'sluice.cell_done' && m['nonce'] === nonce)).slice(-1);
      assert.equal(done?.['status'], 'interrupted');
      assert.equal(done?.['exit_code'], 130);
      assert.deepEqual(results((await k.cell('kept')).messages), [{ 'text/plain': '1', 'application/json': 1 }]);
    } finally {
      await k.stop();
    }
  });

  test(`${language} kernel: a child left running by a cell is killed when the cell ends`, async () => {
    const k = await Driver.start(language);
    try {
      const r = await k.cell(
        py ? 'import subprocess\np = subprocess.Popen(["sleep", "60"])\nprint(p.pid)' : 'const p = require("child_process").spawn("sleep", ["60"], { detached: true, stdio: "ignore" }); p.unref(); console.log(p.pid);',
      );
      const pid = Number(r.stdout.trim());
      assert.ok(pid > 0, r.stdout);
      // Gone, or a zombie that its Popen object will reap: dead either way.
      const state = async (): Promise<string> => {
        try {
          return (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '')[0] ?? '';
        } catch {
          return 'gone';
        }
      };
      let st = '';
      await until(async () => {
        st = await state();
        return st === 'gone' || st === 'Z';
      }, 10_000);
      assert.ok(st === 'gone' || st === 'Z', `the child ${pid} is dead (state ${st})`);
    } finally {
      await k.stop();
    }
  });
}
