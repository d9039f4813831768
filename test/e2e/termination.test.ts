/**
 * How executions end, end to end (real server as root, real bubblewrap): wall-clock timeouts
 * with SIGTERM then SIGKILL after the grace period, cancel of running and queued executions
 * (idempotent), daemons that outlive their program, deaths by signal and exit codes. Every
 * `done` must carry the right `reason`, come once and last, and leave nothing running on the host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { startServer, type TestServer } from './helpers/server.js';
import { outcome, postJSON, readSSE, runStream, type RunOutcome, type Timed } from './helpers/client.js';
import { assertNothingLeft, hostProcesses, waitFor, type HostProc } from './helpers/host.js';

/** Time between SIGTERM and SIGKILL on this file's server, ms. */
const GRACE_MS = 500;
/** A host uid range of our own, so other servers on the machine never show up in our `ps` checks. */
const UID_BASE = 3_000_000 + randomInt(0, 50_000) * 64;
const UID_COUNT = 64;

let server: TestServer;
before(async () => {
  server = await startServer({
    SLUICE_KILL_GRACE_MS: String(GRACE_MS),
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: String(UID_COUNT),
  });
});
after(async () => {
  await server?.stop();
});



const run = (session: string, body: Record<string, unknown>): Promise<RunOutcome> => runStream(server.url, session, { mode: 'process', ...body });

/** An execution streaming over SSE, whose events the test can wait for while it runs. */
interface LiveRun {
  id: string;
  /** Resolves with every event once the stream has ended. */
  finished: Promise<RunOutcome>;
  /** The first event matching `pred` (already seen or still to come); rejects if the stream ends without one. */
  when(what: string, pred: (e: Timed) => boolean): Promise<Timed>;
}

/** Starts a run in process mode (signals reach the program itself; kernels: kernels.test.ts). */
async function startRun(session: string, body: Record<string, unknown>): Promise<LiveRun> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, { mode: 'process', ...body });
  assert.equal(res.status, 200, `stream answered ${res.status}`);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id, 'Sluice-Execution-Id header');
  const seen: Timed[] = [];
  const waiters = new Set<{ pred: (e: Timed) => boolean; resolve: (e: Timed) => void }>();
  const all = readSSE(res, (ev) => {
    seen.push(ev);
    for (const w of [...waiters]) {
      if (w.pred(ev)) {
        waiters.delete(w);
        w.resolve(ev);
      }
    }
  });
  const finished = all.then(outcome);
  // Failures surface through `finished` or `when`; don't let an unobserved one crash the runner.
  finished.catch(() => {});
  return {
    id,
    finished,
    when(what, pred) {
      const hit = seen.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise<Timed>((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        all.then(
          () => {
            if (waiters.delete(w)) reject(new Error(`the stream ended without ${what}: ${JSON.stringify(seen)}`));
          },
          (err: unknown) => {
            waiters.delete(w);
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
      });
    },
  };
}

function stdoutIncludes(s: string): (e: Timed) => boolean {
  return (e) => e.type === 'stdout' && e.content.includes(s);
}

interface CancelAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function cancel(id: string): Promise<CancelAnswer> {
  const res = await fetch(`${server.url}/api/executions/${id}/cancel`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function getExecution(id: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}/api/executions/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

/** The live host process running exactly `args`. */
async function findLive(args: string): Promise<HostProc | undefined> {
  return (await hostProcesses()).find((p) => p.args === args && !p.stat.startsWith('Z'));
}


/**
 * Python that starts a double-forked, setsid, SIGTERM-ignoring daemon `sleep <marker>` which
 * holds the program's stdout, and waits until it runs.
 */
function daemonCode(marker: string, mainIgnoresTerm: boolean, then: string): string {
  return [
    'import os, signal, sys, time',
    mainIgnoresTerm ? 'signal.signal(signal.SIGTERM, signal.SIG_IGN)' : '',
    'print("main up")',
    'pid = os.fork()',
    'if pid == 0:',
    '    os.setsid()',
    '    if os.fork() == 0:',
    '        signal.signal(signal.SIGTERM, signal.SIG_IGN)',
    // stdout stays open in the daemon; SIG_IGN survives the exec.
    `        os.execvp("sh", ["sh", "-c", "echo daemon-alive; exec sleep ${marker}"])`,
    '    os._exit(0)',
    'os.waitpid(pid, 0)',
    'def daemon_up():',
    '    for p in os.listdir("/proc"):',
    '        try:',
    '            if p.isdigit() and open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sleep\\0"):',
    '                return True',
    '        except OSError:',
    '            pass',
    '    return False',
    'while not daemon_up():',
    '    time.sleep(0.01)',
    'print("daemon started")',
    then,
  ].join('\n');
}

test('timeout: a busy loop with timeout 1 ends with reason timeout within timeout + grace, output kept', async () => {
  const t0 = performance.now();
  const r = await run('timeout-busy', { code: 'print("before the loop")\nwhile True:\n    pass\n', timeout: 1 });
  const elapsed = performance.now() - t0;
  assert.equal(r.done.reason, 'timeout');
  assert.equal(r.stdout, 'before the loop\n');
  // python dies of the SIGTERM (no need for the SIGKILL).
  assert.equal(r.done.signal, 'SIGTERM');
  assert.ok(r.done.duration_ms >= 990, `duration ${r.done.duration_ms} ms`);
  assert.ok(elapsed < 1000 + GRACE_MS + 1000, `done after ${Math.round(elapsed)} ms`);
  // Nothing after done; the session runs the next execution normally.
  const next = await run('timeout-busy', { code: 'print("next")' });
  assert.equal(next.stdout, 'next\n');
  assert.equal(next.done.reason, 'exited');
});

test('timeout: a program ignoring SIGTERM is SIGKILLed after the grace period', async () => {
  const t0 = performance.now();
  const r = await run('timeout-ignore', {
    code: 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ignoring SIGTERM")\nwhile True:\n    time.sleep(0.05)\n',
    timeout: 1,
  });
  const elapsed = performance.now() - t0;
  assert.equal(r.done.reason, 'timeout');
  assert.equal(r.done.signal, 'SIGKILL');
  assert.equal(r.stdout, 'ignoring SIGTERM\n');
  // The grace period was honoured, and not much more.
  assert.ok(r.done.duration_ms >= 1000 + GRACE_MS - 50, `duration ${r.done.duration_ms} ms`);
  assert.ok(elapsed < 1000 + GRACE_MS + 1500, `done after ${Math.round(elapsed)} ms`);
});

for (const mainIgnoresTerm of [false, true]) {
  test(`cancel kills a tree with a setsid double-forked SIGTERM-ignoring daemon holding stdout (main ${mainIgnoresTerm ? 'ignores' : 'obeys'} SIGTERM)`, async () => {
    const marker = `31337.${randomInt(1e6)}`;
    const live = await startRun(`cancel-tree-${String(mainIgnoresTerm)}`, {
      code: daemonCode(marker, mainIgnoresTerm, 'while True:\n    time.sleep(0.05)'),
      timeout: 30,
    });
    await live.when('"daemon started"', stdoutIncludes('daemon started'));
    const daemon = await waitFor(`sleep ${marker} on the host`, 3000, () => findLive(`sleep ${marker}`));
    assert.ok(daemon.uid >= UID_BASE && daemon.uid < UID_BASE + UID_COUNT, `daemon runs as host uid ${daemon.uid}`);

    const tCancel = performance.now();
    const c = await cancel(live.id);
    assert.equal(c.status, 202);
    assert.equal(c.body['cancelled'], true);
    assert.equal(c.body['execution_id'], live.id);
    const r = await live.finished;
    const took = r.done.arrivedAt - tCancel;
    assert.equal(r.done.reason, 'cancelled');
    assert.ok(r.stdout.includes('main up\n') && r.stdout.includes('daemon-alive\n') && r.stdout.includes('daemon started\n'), r.stdout);
    if (mainIgnoresTerm) {
      assert.equal(r.done.signal, 'SIGKILL');
      assert.ok(took >= GRACE_MS - 50, `escalated after ${Math.round(took)} ms`);
    }
    assert.ok(took < GRACE_MS + 1500, `done ${Math.round(took)} ms after cancel`);
    await assertNothingLeft(daemon.uid, marker, marker);
    assert.equal((await getExecution(live.id))['state'], 'finished');
  });
}

test('cancel right as the execution starts stops the program at once: SIGTERM reaches it, or it never runs', async (t) => {
  // The program obeys SIGTERM. Whenever the cancel lands, the program must either get the
  // SIGTERM or be stopped before it runs: it must not go on running (and printing) until the
  // SIGKILL at the end of the grace period.
  const outcomes: { signal: string | undefined; ms: number; stdout: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const live = await startRun(`cancel-early-${i}`, { code: 'import time\nprint("up")\ntime.sleep(20)\n', timeout: 30 });
    await live.when('start', (e) => e.type === 'start');
    const c = await cancel(live.id);
    assert.equal(c.status, 202);
    const r = await live.finished;
    assert.equal(r.done.reason, 'cancelled');
    outcomes.push({ signal: r.done.signal, ms: r.done.duration_ms, stdout: r.stdout });
  }
  const summary = outcomes.map((o) => `${o.signal ?? 'no signal'} after ${o.ms} ms, stdout ${JSON.stringify(o.stdout)}`).join('; ');
  t.diagnostic(`early cancels: ${summary}`);
  for (const o of outcomes) {
    assert.ok(o.signal === 'SIGTERM' || o.stdout === '', `the program kept running after the cancel until SIGKILL: ${summary}`);
  }
});

test('a daemon left behind by a program that exits normally is killed, and done comes at once with reason exited', async () => {
  const marker = `31338.${randomInt(1e6)}`;
  // The main program lingers 1 s after the daemon is up, so that the test can see it on the host.
  const live = await startRun('daemon-exit', { code: daemonCode(marker, false, 'time.sleep(1)\nprint("main exits")\nsys.exit(0)'), timeout: 30 });
  await live.when('"daemon started"', stdoutIncludes('daemon started'));
  const daemon = await waitFor(`sleep ${marker} on the host`, 900, () => findLive(`sleep ${marker}`));
  const exits = await live.when('"main exits"', stdoutIncludes('main exits'));
  const r = await live.finished;
  assert.equal(r.done.reason, 'exited');
  assert.equal(r.done.exit_code, 0);
  assert.equal(r.done.signal, undefined);
  assert.equal(r.stdout, 'main up\ndaemon-alive\ndaemon started\nmain exits\n');
  const lag = r.done.arrivedAt - exits.arrivedAt;
  assert.ok(lag < 1000, `done ${Math.round(lag)} ms after the program's last line (the daemon must not delay it)`);
  await assertNothingLeft(daemon.uid, marker, marker);
});

test('cancel is idempotent: twice at once, again, and after done (200, cancelled: false); unknown ids are 404', async () => {
  const live = await startRun('cancel-idem', { code: 'import time\nprint("up")\ntime.sleep(30)\n', timeout: 30 });
  await live.when('"up"', stdoutIncludes('up'));
  const [a, b] = await Promise.all([cancel(live.id), cancel(live.id)]);
  const c = await cancel(live.id);
  for (const x of [a, b, c]) {
    assert.ok(x.status === 202 || x.status === 200, `cancel answered ${x.status}: ${JSON.stringify(x.body)}`);
    assert.equal(x.body['execution_id'], live.id);
    // 202 while it was still running (cancelled: true), 200 once finished (cancelled: false).
    assert.equal(x.body['cancelled'], x.status === 202);
  }
  assert.equal(a.status, 202, 'the first cancel finds it running');
  const r = await live.finished; // doneOf: exactly one done, last
  assert.equal(r.done.reason, 'cancelled');
  assert.equal(r.stdout, 'up\n');
  const afterDone = await cancel(live.id);
  assert.equal(afterDone.status, 200);
  assert.equal(afterDone.body['cancelled'], false);
  assert.equal(afterDone.body['state'], 'finished');
  // The log still holds exactly one done, with the first reason.
  const view = await getExecution(live.id);
  assert.equal(view['reason'], 'cancelled');
  assert.equal(view['state'], 'finished');

  const missing = await fetch(`${server.url}/api/executions/00000000-0000-4000-8000-000000000000/cancel`, { method: 'POST' });
  assert.equal(missing.status, 404);
  const err = (await missing.json()) as { error?: { code?: string } };
  assert.equal(err.error?.code, 'NOT_FOUND');
  // The session runs the next execution normally.
  const next = await run('cancel-idem', { code: 'print("next")' });
  assert.equal(next.stdout, 'next\n');
});

test('cancel of a queued execution: it never starts and ends cancelled; the running one and the queue carry on', async () => {
  const first = await startRun('queue', { code: 'import time\nprint("first up")\ntime.sleep(1.5)\nprint("first done")\n' });
  await first.when('"first up"', stdoutIncludes('first up'));
  const second = await startRun('queue', { code: 'open("/workspace/second-ran", "w").write("x")\nprint("second ran")\n' });
  assert.notEqual(second.id, first.id);
  assert.equal((await getExecution(second.id))['state'], 'queued');
  const c = await cancel(second.id);
  assert.equal(c.status, 202);
  assert.equal(c.body['cancelled'], true);
  const r2 = await second.finished;
  assert.deepEqual(r2.events.map((e) => e.type), ['done'], 'a cancelled queued execution has no start and no output');
  assert.equal(r2.done.reason, 'cancelled');
  assert.equal(r2.done.exit_code, null);
  const view2 = await getExecution(second.id);
  assert.equal(view2['state'], 'finished');
  assert.equal(view2['started_at'], null);
  const again = await cancel(second.id);
  assert.equal(again.status, 200);
  assert.equal(again.body['cancelled'], false);

  const r1 = await first.finished;
  assert.equal(r1.done.reason, 'exited');
  assert.equal(r1.stdout, 'first up\nfirst done\n');
  const third = await run('queue', { code: 'import os\nprint(os.path.exists("/workspace/second-ran"))\n' });
  assert.equal(third.done.reason, 'exited');
  assert.equal(third.stdout, 'False\n', 'the cancelled execution never ran');
});

test('a program killed by a signal ends with reason signaled and the signal named', async () => {
  const segv = await run('signals', { language: 'bash', code: 'echo before\nkill -SEGV $$\necho after\n' });
  assert.equal(segv.done.reason, 'signaled');
  assert.equal(segv.done.signal, 'SIGSEGV');
  assert.equal(segv.stdout, 'before\n');
  const kill9 = await run('signals', { language: 'python', code: 'import os\nprint("before", flush=True)\nos.kill(os.getpid(), 9)\nprint("after")\n' });
  assert.equal(kill9.done.reason, 'signaled');
  assert.equal(kill9.done.signal, 'SIGKILL');
  assert.equal(kill9.stdout, 'before\n');
  const abort = await run('signals', { language: 'python', code: 'import os\nos.abort()\n' });
  assert.equal(abort.done.reason, 'signaled');
  assert.equal(abort.done.signal, 'SIGABRT');
});

test('exit codes pass through with reason exited', async () => {
  const cases: { language: string; code: string; exit: number }[] = [
    { language: 'python', code: 'import sys\nsys.exit(42)\n', exit: 42 },
    { language: 'python', code: 'print("ok")\n', exit: 0 },
    { language: 'python', code: 'raise RuntimeError("boom")\n', exit: 1 },
    { language: 'bash', code: 'exit 3\n', exit: 3 },
    { language: 'bash', code: 'exit 127\n', exit: 127 },
  ];
  for (const c of cases) {
    const r = await run('exits', { language: c.language, code: c.code });
    assert.equal(r.done.exit_code, c.exit, `${c.code}: ${r.stderr}`);
    assert.equal(r.done.reason, 'exited', c.code);
    assert.equal(r.done.signal, undefined, c.code);
  }
  const boom = await run('exits', { language: 'python', code: 'raise RuntimeError("boom")\n' });
  assert.match(boom.stderr, /RuntimeError: boom/);
});

test('an exit status above 128 chosen by the program is an exit, not a death by signal', async () => {
  // A program may exit with any status; `sys.exit(137)` did not die of SIGKILL.
  for (const status of [130, 137, 143]) {
    const r = await run('exits-high', { language: 'python', code: `import sys\nsys.exit(${status})\n` });
    assert.equal(r.done.exit_code, status);
    assert.deepEqual({ reason: r.done.reason, signal: r.done.signal }, { reason: 'exited', signal: undefined }, `sys.exit(${status})`);
  }
});
