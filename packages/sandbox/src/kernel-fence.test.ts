/**
 * The end of a kernel cell costs no round trip (kernel.ts, python_kernel.py, node_kernel.js):
 * the kernel ends a cell with its fence, which carries the cell's outcome, without waiting for
 * the server's answer, and does not wait for the answer to its trailing expression's result
 * either when nothing of the cell can print after it (the result and the fence then go in one
 * write). A Python cell with a thread still running still waits for that answer, so the
 * thread's later output cannot overtake the result. Driven here directly on its sockets (no
 * sandbox), with the server's answers held back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { spawnKernelOnPipes, stopKernelOnPipes } from './kernel-pipes.test-helper.js';

const DEADLINE_MS = 30_000;

type Message = Record<string, unknown>;

/** A kernel whose sync lines are answered only when the test says so. */
class Kernel {
  /** Lines on the events socket (fd 3) and the control socket (fd 4), each in arrival order. */
  readonly events: Message[] = [];
  readonly control: Message[] = [];
  /** The events socket's bytes as read, one string per read. */
  readonly eventReads: string[] = [];
  stdout = '';
  stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (t: string) => (this.stdout += t));
    child.stderr?.setEncoding('utf8').on('data', (t: string) => (this.stderr += t));
    this.lines(child.stdio[3] as Readable, this.events);
    (child.stdio[3] as Readable).on('data', (t: string) => this.eventReads.push(t));
    this.lines(child.stdio[4] as Readable, this.control);
    (child.stdio[3] as Writable).on('error', () => {});
    (child.stdio[4] as Writable).on('error', () => {});
  }

  static async start(language: 'python' | 'javascript' = 'python'): Promise<Kernel> {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-kernel-fence-'));
    const child = spawnKernelOnPipes(language, dir);
    const k = new Kernel(child, dir);
    try {
      await k.until(() => k.control.some((m) => m['type'] === 'sluice.kernel_ready'), 'kernel_ready');
    } catch (err) {
      await k.stop();
      throw err;
    }
    return k;
  }

  private lines(stream: Readable, into: Message[]): void {
    let buf = '';
    stream.setEncoding('utf8').on('data', (t: string) => {
      buf += t;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        into.push(JSON.parse(buf.slice(0, nl)) as Message);
        buf = buf.slice(nl + 1);
      }
    });
  }

  execute(nonce: string, code: string): void {
    (this.child.stdio[4] as Writable).write(`${JSON.stringify({ type: 'execute', nonce, code })}\n`);
  }

  /** Answers `n` sync lines, as the server does once it has placed them. */
  answer(n: number): void {
    (this.child.stdio[3] as Writable).write(Buffer.alloc(n, 6));
  }

  /** The cell's end: its fence (no cell_done on the control socket). */
  doneOf(nonce: string): Message | undefined {
    return this.events.find((m) => m['type'] === 'sync' && m['fence'] === nonce);
  }

  async until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + DEADLINE_MS;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`no ${what} in ${DEADLINE_MS} ms; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stop(): Promise<void> {
    return stopKernelOnPipes(this.child, this.dir);
  }
}

const nonce = (n: number): string => n.toString(16).padStart(32, '0');

/**
 * A quiet cell (`1 + 1`) writes its result and its end in one write and waits for neither answer;
 * both answers come late, and the next cell's helper calls (`helpers`: progress(5), a print of
 * "between", progress(6), then 3 + 3) still get their own.
 */
async function quietCellEndsInOneWrite(k: Kernel, helpers: string): Promise<void> {
  k.execute(nonce(1), '1 + 1');
  // Nothing is answered: the old kernels waited here for the result's answer, forever.
  await k.until(() => k.doneOf(nonce(1)) !== undefined, 'the cell\'s end with no answer given');
  assert.deepEqual([...k.events], [
    { type: 'result', data: { 'text/plain': '2', 'application/json': 2 }, sync: true },
    { type: 'sync', sync: true, fence: nonce(1), done: { status: 'ok', exit_code: 0 } },
  ]);
  assert.deepEqual(
    k.control.map((m) => m['type']),
    ['sluice.kernel_ready'],
  );
  // One write for both: the server wakes once for them.
  assert.equal(k.eventReads.length, 1, `the result and the fence came in ${k.eventReads.length} reads`);
  k.answer(2);
  k.events.length = 0;
  k.execute(nonce(2), helpers);
  await k.until(() => k.events.length >= 1, 'the first progress');
  k.answer(1);
  await k.until(() => k.events.length >= 2, 'the second progress');
  assert.equal(k.stdout, 'between\n');
  k.answer(1);
  await k.until(() => k.doneOf(nonce(2)) !== undefined, 'the second cell\'s end');
  assert.deepEqual(
    k.events.map((e) => [e['type'], e['percent'] ?? e['fence'] ?? null]),
    [
      ['progress', 5],
      ['progress', 6],
      ['result', null],
      ['sync', nonce(2)],
    ],
  );
}

test('python kernel: a quiet cell writes its result and its end (the fence) without waiting for an answer', async () => {
  const k = await Kernel.start();
  try {
    await quietCellEndsInOneWrite(k, 'progress(5)\nprint("between")\nprogress(6)\n3 + 3');
  } finally {
    await k.stop();
  }
});

test('python kernel: a result with a thread of its cell still running waits for its answer before the cell ends', async () => {
  const k = await Kernel.start();
  try {
    // A daemon thread (the cell does not wait for it) prints after the result.
    k.execute(nonce(1), 'import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), print("late")), daemon=True).start()\n7 * 6');
    await k.until(() => k.events.length >= 1 && k.stdout.includes('late'), 'the result and the thread\'s line');
    assert.equal(k.events[0]?.['type'], 'result');
    assert.equal(k.doneOf(nonce(1)), undefined, 'the cell ended before its result was answered');
    k.answer(1);
    await k.until(() => k.doneOf(nonce(1)) !== undefined, 'the cell\'s end once answered');
    assert.deepEqual(k.events[1], { type: 'sync', sync: true, fence: nonce(1), done: { status: 'ok', exit_code: 0 } });
    k.answer(1);
    k.execute(nonce(2), '1 + 1');
    await k.until(() => k.doneOf(nonce(2)) !== undefined, 'the next cell\'s end');
  } finally {
    await k.stop();
  }
});

test('javascript kernel: a cell writes its result and its end (the fence) in one write, without waiting for an answer', async () => {
  const k = await Kernel.start('javascript');
  try {
    await quietCellEndsInOneWrite(k, 'progress(5); console.log("between"); progress(6); 3 + 3');
    // An error and process.exit() end their cells the same way, the exit ending the kernel.
    k.answer(2);
    k.execute(nonce(3), 'throw new Error("boom")');
    await k.until(() => k.doneOf(nonce(3)) !== undefined, 'the failed cell\'s end');
    assert.deepEqual(k.doneOf(nonce(3))?.['done'], { status: 'error', exit_code: 1 });
    k.answer(1);
    k.execute(nonce(4), 'process.exit(3)');
    await k.until(() => k.doneOf(nonce(4)) !== undefined, 'the exiting cell\'s end');
    assert.deepEqual(k.doneOf(nonce(4))?.['done'], { status: 'error', exit_code: 3, exiting: true });
    assert.deepEqual(
      k.control.map((m) => m['type']),
      ['sluice.kernel_ready'],
    );
  } finally {
    await k.stop();
  }
});

test('javascript kernel: a cell that closed and reused fd 3 is ended through cell_done on the control socket', async () => {
  const k = await Kernel.start('javascript');
  try {
    // fd 3 is then a file: a fence written there would end nothing, and the cell would hang.
    k.execute(nonce(1), 'const fs = require("node:fs"); fs.closeSync(3); fs.openSync("/dev/null", "w"); 5');
    await k.until(() => k.control.some((m) => m['type'] === 'sluice.cell_done'), 'cell_done');
    assert.deepEqual(
      k.control.filter((m) => m['type'] === 'sluice.cell_done'),
      [{ type: 'sluice.cell_done', nonce: nonce(1), status: 'ok', exit_code: 0 }],
    );
    assert.equal(k.doneOf(nonce(1)), undefined);
  } finally {
    await k.stop();
  }
});
