import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecutionEvent } from '@sluice/protocol';
import { runtimeFor, type RunContext, type Runner, type RunnerOutcome, type RunSink } from '@sluice/sandbox';
import { Execution, type StartRunner } from './execution.js';

/** A runner driven by the test: it records what the execution asks of it and ends when told. */
class FakeRunner implements Runner {
  readonly done: Promise<RunnerOutcome>;
  stops: number[] = [];
  stdin: string[] = [];
  ended = false;
  stdinBacklog = 0;
  private resolve!: (o: RunnerOutcome) => void;
  constructor(readonly sink: RunSink) {
    this.done = new Promise((r) => (this.resolve = r));
  }
  stop(graceMs: number): void {
    this.stops.push(graceMs);
  }
  writeStdin(data: string): void {
    this.stdin.push(data);
  }
  endStdin(): void {
    this.ended = true;
  }
  watchCPU(): null {
    return null;
  }
  end(o: Partial<RunnerOutcome> = {}): void {
    this.resolve({ exitCode: 0, signal: null, setupError: null, oomKilled: false, oomKills: 0, pidsMaxHits: 0, kernelRestart: null, ...o });
  }
}

const ctx = {
  outputLimitBytes: 1024 * 1024,
  outputKillBytes: 4 * 1024 * 1024,
  killGraceMs: 100,
  cpuTimeSec: 0,
  memoryBytes: 512 * 1024 * 1024,
  limits: { fileSize: 1 << 20, openFiles: 64, processes: 64 },
} as RunContext;

function execution(extra: { stdin?: string; timeoutSec?: number; mode?: 'process' | 'kernel' } = {}): Execution {
  const runtime = runtimeFor('python');
  assert.ok(runtime);
  return new Execution({
    id: 'e1',
    sessionID: 's1',
    owner: null,
    language: 'python',
    mode: extra.mode ?? 'process',
    runtime,
    code: 'print(1)',
    stdin: extra.stdin,
    env: {},
    timeoutSec: extra.timeoutSec ?? 60,
    maxLogBytes: 1 << 20,
  });
}

/** A StartRunner that hands the test its runner once the execution asks for one. */
function starter(): { start: StartRunner; runner: Promise<FakeRunner>; release: () => void } {
  let gotRunner!: (r: FakeRunner) => void;
  const runner = new Promise<FakeRunner>((r) => (gotRunner = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  return {
    runner,
    release,
    start: async (_request, _ctx, sink) => {
      await released;
      const r = new FakeRunner(sink);
      // Handed to the test once the execution has taken it (its code after `await start`).
      setImmediate(() => gotRunner(r));
      return r;
    },
  };
}

const types = (events: readonly ExecutionEvent[]): string[] => events.map((e) => e.type);

test('output and events land in order, and done comes once, last, with the runner\'s status', async () => {
  const exec = execution();
  const s = starter();
  s.release();
  const running = exec.run(ctx, s.start);
  const r = await s.runner;
  r.sink.output('stdout', Buffer.from('a\n'));
  r.sink.event({ type: 'progress', percent: 50 });
  r.sink.output('stdout', Buffer.from('b\n'));
  r.end({ exitCode: 3 });
  await running;
  const events = [...exec.log.events()];
  assert.deepEqual(types(events), ['start', 'stdout', 'progress', 'stdout', 'done']);
  const done = events.at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.exit_code, 3);
  assert.equal(done.reason, 'exited');
  assert.equal(exec.state, 'finished');
});

test('a cancel before the run starts ends it at once: the runner is never started', async () => {
  const exec = execution();
  exec.cancel(100);
  let started = false;
  await exec.run(ctx, async () => {
    started = true;
    throw new Error('not reached');
  });
  assert.equal(started, false);
  const done = [...exec.log.events()].at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'cancelled');
});

test('a cancel while the runner starts is applied once it is up', async () => {
  const exec = execution();
  const s = starter();
  const running = exec.run(ctx, s.start);
  exec.cancel(250);
  s.release();
  const r = await s.runner;
  assert.deepEqual(r.stops, [100], 'stopped with the context\'s kill grace');
  r.end({ exitCode: 143, signal: 'SIGTERM' });
  await running;
  const done = [...exec.log.events()].at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'cancelled');
});

test('the timeout stops the runner and done says timeout', async () => {
  const exec = execution({ timeoutSec: 0.05 });
  const s = starter();
  s.release();
  const running = exec.run(ctx, s.start);
  const r = await s.runner;
  const deadline = Date.now() + 5000;
  while (r.stops.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(r.stops, [100]);
  r.end({ exitCode: 143, signal: 'SIGTERM' });
  await running;
  const done = [...exec.log.events()].at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'timeout');
});

test('stdin sent before the runner is up reaches it in order, then end of input', async () => {
  const exec = execution();
  const s = starter();
  const running = exec.run(ctx, s.start);
  exec.writeStdin('one\n', false);
  exec.writeStdin('two\n', true);
  s.release();
  const r = await s.runner;
  assert.deepEqual(r.stdin, ['one\n', 'two\n']);
  assert.equal(r.ended, true);
  assert.throws(() => exec.writeStdin('three\n', false), /closed/);
  r.end();
  await running;
});

test('output past the kill bound stops the run at once with output_limit', async () => {
  const exec = execution();
  const s = starter();
  s.release();
  const running = exec.run({ ...ctx, outputKillBytes: 10 }, s.start);
  const r = await s.runner;
  r.sink.output('stdout', Buffer.from('x'.repeat(20)));
  assert.deepEqual(r.stops, [0]);
  r.end({ exitCode: 137, signal: 'SIGKILL' });
  await running;
  const done = [...exec.log.events()].at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'output_limit');
});

test('a runner that could not start gives an error event, then done with reason error', async () => {
  const exec = execution();
  const s = starter();
  s.release();
  const running = exec.run(ctx, s.start);
  (await s.runner).end({ exitCode: null, setupError: 'the sandbox failed to start: no bwrap' });
  await running;
  const events = [...exec.log.events()];
  assert.deepEqual(types(events), ['start', 'error', 'done']);
  const error = events[1];
  assert.ok(error?.type === 'error');
  assert.equal(error.code, 'SANDBOX_UNAVAILABLE');
  assert.match(error.error, /no bwrap/);
  const done = events.at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'error');
});

test('the OOM killer ending the program is memory_limit; a killed child and refused forks are notes', async () => {
  const exec = execution();
  const s = starter();
  s.release();
  const running = exec.run(ctx, s.start);
  (await s.runner).end({ exitCode: 137, signal: 'SIGKILL', oomKilled: true });
  await running;
  const done = [...exec.log.events()].at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.reason, 'memory_limit');

  const other = execution();
  const s2 = starter();
  s2.release();
  const running2 = other.run(ctx, s2.start);
  (await s2.runner).end({ exitCode: 0, oomKills: 2, pidsMaxHits: 5 });
  await running2;
  const events = [...other.log.events()];
  const stderr = events.flatMap((e) => (e.type === 'stderr' ? [e.content] : [])).join('');
  assert.match(stderr, /memory limit \(536870912 bytes\) was reached; the kernel killed 2 process/);
  assert.match(stderr, /process limit \(64\) was reached; 5 fork\(s\) refused/);
  const done2 = events.at(-1);
  assert.ok(done2?.type === 'done');
  assert.equal(done2.reason, 'exited');
});

test('a lost kernel is said on stderr and in done', async () => {
  const exec = execution({ mode: 'kernel' });
  const s = starter();
  s.release();
  const running = exec.run(ctx, s.start);
  (await s.runner).end({ exitCode: 0, kernelRestart: { died: false, broken: 'stdout' } });
  await running;
  const events = [...exec.log.events()];
  const stderr = events.flatMap((e) => (e.type === 'stderr' ? [e.content] : [])).join('');
  assert.match(stderr, /closed or redirected the kernel's stdout \(fd 1\).*restarted/);
  const done = events.at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.kernel_restarted, true);
});
