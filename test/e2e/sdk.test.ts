/**
 * The SDK against a real server, on both transports: run and stream with callbacks; stdin;
 * kernels and restart; every event exactly once across a connection cut mid-stream (a TCP proxy
 * kills the socket); `break` and an AbortSignal stop every process of the run on the server; two
 * executions multiplexed on one WebSocket; a slow consumer of 50 MB does not make the SDK buffer;
 * typed errors with their request ids; files byte for byte; sessions; and every example program
 * of docs/sdk.md run against the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import {
  InvalidRequestError,
  NotFoundError,
  SessionBusyError,
  Sluice,
  UnauthorizedError,
  UnsupportedLanguageError,
  type ExecutionEvent,
  type Session,
  type SluiceOptions,
  type Transport,
} from '@sluice/sdk';
import { listenLoopback, pairConnections } from './helpers/net.js';
import { REPO_ROOT, startServer, type TestServer } from './helpers/server.js';

const KEY = 'sdk-e2e-key-0123456789abcdef';
let server: TestServer;

before(async () => {
  // One queued execution per session at most, so the 409 is easy to provoke.
  server = await startServer({ SLUICE_API_KEYS: KEY, SLUICE_MAX_QUEUE: '1' });
});
after(async () => {
  await server.stop();
});

/** Counts the sockets the SDK opens. */
let socketsOpened = 0;
class CountingWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    socketsOpened++;
  }
}

function client(transport: Transport, baseURL = server.url, over: Partial<SluiceOptions> = {}): Sluice {
  return new Sluice({ baseURL, apiKey: KEY, transport, WebSocket: CountingWebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...over });
}

/** A program printing `line 0` … `line n-1`, one every `interval` seconds. */
function numberedLines(n: number, interval: number): { code: string; stdout: string } {
  return {
    code: `import time\nfor i in range(${n}):\n    print(f"line {i}")\n    time.sleep(${interval})\n`,
    stdout: Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''),
  };
}

/**
 * A run whose forked child rewrites beat.txt every 20 ms while the parent sleeps: once the run is
 * over, a beat.txt that still changes means a process of it survived.
 */
const BEATING = [
  'import os, time',
  'if os.fork() == 0:',
  '    n = 0',
  '    while True:',
  '        n += 1',
  '        with open("beat.tmp", "w") as f:',
  '            f.write(str(n))',
  '        os.replace("beat.tmp", "beat.txt")',
  '        time.sleep(0.02)',
  'while not os.path.exists("beat.txt"):',
  '    time.sleep(0.01)',
  'print("started", flush=True)',
  'time.sleep(60)',
].join('\n');

async function assertNoProcessLeft(session: Session): Promise<void> {
  const first = await session.files.readText('beat.txt');
  await sleep(300);
  assert.equal(await session.files.readText('beat.txt'), first, 'beat.txt still changes: a process of the run survived');
}

function assertExactlyOnce(events: readonly ExecutionEvent[]): void {
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `event ${i} has seq ${e.seq}`));
  assert.equal(events.filter((e) => e.type === 'done').length, 1);
  assert.equal(events.at(-1)?.type, 'done');
}

function stdoutOf(events: readonly ExecutionEvent[]): string {
  return events.map((e) => (e.type === 'stdout' ? e.content : '')).join('');
}

/** GET /api/executions/{id} until it is finished; returns its reason and how long that took. */
async function untilFinished(sluice: Sluice, id: string, timeoutMs: number): Promise<{ reason: string | null; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const info = await sluice.executions.get(id);
    if (info.state === 'finished') return { reason: info.reason, ms: performance.now() - t0 };
    assert.ok(performance.now() - t0 < timeoutMs, `execution ${id} still ${info.state} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

const REQUEST_ID = /^[0-9a-f]{32}$/;

interface Proxy {
  url: string;
  cuts(): number;
  connections(): number;
  /**
   * Arms the proxy: the first connection that then carries `n` more bytes from the server is
   * destroyed, and so on `times` times (each new connection gets its own `n` bytes).
   */
  cutAfter(n: number, times?: number): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to the server that can cut a connection mid-stream. */
async function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  let armed: number | undefined;
  let remaining = 0;
  let cuts = 0;
  let connections = 0;
  const open = new Set<Socket>();
  const proxy: Server = createServer((downstream) => {
    connections++;
    const upstream = connect(Number(port), hostname);
    pairConnections(downstream, upstream, open);
    let carried = 0;
    downstream.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (armed !== undefined) {
        carried += d.length;
        if (carried >= armed) {
          if (--remaining === 0) armed = undefined;
          cuts++;
          downstream.destroy();
          upstream.destroy();
          return;
        }
      }
      if (!downstream.write(d)) {
        upstream.pause();
        downstream.once('drain', () => upstream.resume());
      }
    });
  });
  const listening = await listenLoopback(proxy, open);
  return {
    ...listening,
    cuts: () => cuts,
    connections: () => connections,
    cutAfter: (n, times = 1) => {
      armed = n;
      remaining = times;
    },
  };
}

for (const transport of ['sse', 'websocket'] as const) {
  describe(`over ${transport}`, () => {
    test('run() folds stdout, stderr, exit code, reason, progress and results; the callbacks fire as it runs', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create({ language: 'python' });
      const seen: string[] = [];
      let out = '';
      let err = '';
      const progress: (number | undefined)[] = [];
      const results: unknown[] = [];
      const code = 'import sys\nfrom sluice import progress, result\nprint("out")\nprogress(50, "half")\nprint("err", file=sys.stderr)\nresult({"a": 1})\nsys.exit(3)';
      const r = await session.run(code, {
        mode: 'process',
        // Chunks, not lines: print() may reach the server as "out" and "\n".
        onStdout: (t) => (out += t),
        onStderr: (t) => (err += t),
        onProgress: (p) => progress.push(p.percent),
        onResult: (e) => results.push(e.data['application/json']),
        onEvent: (e) => seen.push(e.type),
      });
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      assert.equal(r.exitCode, 3);
      assert.equal(r.reason, 'exited');
      assert.equal(r.ok, false);
      assert.ok(r.durationMs > 0);
      assert.match(r.executionID, /^[0-9a-f]+$/);
      assert.deepEqual(r.progress, [{ percent: 50, message: 'half' }]);
      assert.deepEqual(r.results.map((d) => d['application/json']), [{ a: 1 }]);
      assert.equal(out, 'out\n');
      assert.equal(err, 'err\n');
      assert.deepEqual(progress, [50]);
      assert.deepEqual(results, [{ a: 1 }]);
      assert.equal(seen[0], 'start');
      assert.equal(seen.at(-1), 'done');
      const timedOut = await session.run('import time\ntime.sleep(30)', { mode: 'process', timeout: 1 });
      assert.equal(timedOut.timedOut, true);
      assert.equal(timedOut.reason, 'timeout');
      await session.delete();
      sluice.close();
    });

    test('stream() on a new session id yields the typed events in order and names the execution before the first one is read', async () => {
      const sluice = client(transport);
      const id = `sdk-stream-${transport}`;
      const session = sluice.session(id); // no request yet: the run creates the session
      const stream = session.stream('print("a")\nprint("b")', { mode: 'process' });
      const executionID = await stream.executionID;
      const events: ExecutionEvent[] = [];
      for await (const e of stream) events.push(e);
      assertExactlyOnce(events);
      assert.equal(events[0]?.type === 'start' && events[0].execution_id, executionID);
      assert.equal(stdoutOf(events), 'a\nb\n');
      assert.equal((await stream.result()).executionID, executionID);
      assert.equal((await sluice.sessions.get(id)).id, id);
      await session.delete();
      sluice.close();
    });

    test('stdin: given with the run, or written to the running program and closed; a write after EOF is refused', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create();
      assert.equal((await session.run('print(input().upper())', { mode: 'process', stdin: 'given\n' })).stdout, 'GIVEN\n');
      const stream = session.stream('import sys\nname = input("name? ")\nprint(f"hello, {name}")\nprint(repr(sys.stdin.read()))', { mode: 'process' });
      await stream.stdin('Ada\n');
      await stream.stdin('rest');
      await stream.closeStdin();
      await assert.rejects(stream.stdin('late'), (e: unknown) => e instanceof InvalidRequestError && (transport === 'websocket' || REQUEST_ID.test(e.requestID ?? '')));
      const r = await stream.result();
      assert.equal(r.stdout, "name? hello, Ada\n'rest'\n");
      // 3 MiB in one write: over a WebSocket it goes in confirmed pieces under the frame limit.
      const big = session.stream('import sys, hashlib\nd = sys.stdin.read()\nprint(len(d), hashlib.sha256(d.encode()).hexdigest()[:12])', { mode: 'process' });
      const text = 'é'.repeat(1024 * 1024) + 'z'.repeat(1024 * 1024);
      await big.stdin(text);
      await big.closeStdin();
      const bigResult = await big.result();
      assert.equal(bigResult.stdout, `${text.length} ${createHash('sha256').update(text).digest('hex').slice(0, 12)}\n`, bigResult.stderr);
      await session.delete();
      sluice.close();
    });

    test('kernel mode keeps state between runs until restart()', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create({ language: 'python' });
      await session.run('x = 41', { mode: 'kernel' });
      const r = await session.run('x + 1', { mode: 'kernel' });
      assert.equal(r.results[0]?.['text/plain'], '42');
      assert.deepEqual(await session.restart(), ['python']);
      const after = await session.run('x', { mode: 'kernel' });
      assert.match(after.stderr, /NameError/);
      await session.delete();
      sluice.close();
    });

    test('every event arrives exactly once across connections cut mid-stream, three times', async () => {
      const proxy = await startProxy(server.url);
      const sluice = client(transport, proxy.url);
      try {
        const session = await sluice.sessions.create();
        const prog = numberedLines(30, 0.05);
        const connectionsBefore = proxy.connections();
        proxy.cutAfter(900, 3);
        const events: ExecutionEvent[] = [];
        for await (const e of session.stream(prog.code, { mode: 'process' })) events.push(e);
        assert.equal(proxy.cuts(), 3, 'the proxy cut the stream three times');
        assert.ok(proxy.connections() > connectionsBefore, 'the SDK reconnected');
        assertExactlyOnce(events);
        assert.equal(stdoutOf(events), prog.stdout);
        await session.delete();
      } finally {
        sluice.close();
        await proxy.close();
      }
    });

    test('break out of for await cancels the run: every process of it is gone', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create();
      const stream = session.stream(BEATING, { mode: 'process' });
      const id = await stream.executionID;
      for await (const e of stream) if (e.type === 'stdout') break;
      const { reason } = await untilFinished(sluice, id, 5000);
      assert.equal(reason, 'cancelled');
      await assertNoProcessLeft(session);
      await session.delete();
      sluice.close();
    });

    test('aborting the signal rejects with its reason and cancels the run: every process of it is gone', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create();
      const ac = new AbortController();
      const stream = session.stream(BEATING, {
        mode: 'process',
        signal: ac.signal,
        onStdout: () => ac.abort(new Error('stop now')),
      });
      const id = await stream.executionID;
      await assert.rejects(stream.result(), /stop now/);
      const { reason } = await untilFinished(sluice, id, 5000);
      assert.equal(reason, 'cancelled');
      await assertNoProcessLeft(session);
      await session.delete();
      sluice.close();
    });

    test('a slow consumer of 50 MB of output does not make the SDK buffer it, and gets every byte', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const heap = (): number => {
        gc();
        return process.memoryUsage().heapUsed;
      };
      const sluice = client(transport);
      const session = await sluice.sessions.create({ limits: { outputBytes: 64 * 1024 * 1024 } });
      const code = 'import sys\nline = "x" * 1023 + "\\n"\nfor i in range(50 * 1024):\n    sys.stdout.write(line)\n';
      const it = session.stream(code, { mode: 'process', timeout: 120 })[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      const base = heap();
      // The program prints everything while nobody reads.
      await sleep(4000);
      const paused = heap() - base;
      let bytes = 0;
      let peak = 0;
      let n = 0;
      let last: ExecutionEvent | undefined;
      let seq = 1;
      for (let r = await it.next(); r.done !== true; r = await it.next()) {
        assert.equal(r.value.seq, ++seq, `event ${r.value.type} after seq ${seq - 1}`);
        last = r.value;
        if (r.value.type === 'stdout') bytes += r.value.content.length;
        if (++n % 100 === 0) {
          peak = Math.max(peak, heap() - base);
          await sleep(20); // slow
        }
      }
      assert.equal(last?.type, 'done');
      assert.equal(bytes, 50 * 1024 * 1024, 'every byte arrived');
      // 50 MB were printed while the consumer paused: what the SDK held meanwhile is its bound
      // (SSE: one network chunk; WebSocket: the 8 MiB queue, strings at 2 bytes a character).
      assert.ok(paused < 24 * 1024 * 1024, `the heap grew ${(paused / 2 ** 20).toFixed(1)} MiB while the consumer paused`);
      // The stream keeps its fold for result(): the text read so far, which the session's output
      // limit bounds (the server truncates past it). What must not grow is what was not read yet.
      assert.ok(peak < 64 * 1024 * 1024 + 24 * 1024 * 1024, `peak heap growth ${(peak / 2 ** 20).toFixed(1)} MiB`);
      await session.delete();
      sluice.close();
    });

    test('typed errors with request ids: unsupported language (422), busy session (409)', async () => {
      const sluice = client(transport);
      const session = await sluice.sessions.create();
      await assert.rejects(
        session.run('x', { language: 'cobol' }),
        (err: unknown) => err instanceof UnsupportedLanguageError && err.status === 422 && REQUEST_ID.test(err.requestID ?? ''),
      );
      const sleeper = session.stream('import time\nprint("go", flush=True)\ntime.sleep(30)', { mode: 'process' });
      await sleeper.executionID;
      const queued = session.stream('print(1)', { mode: 'process' });
      await queued.executionID;
      await assert.rejects(
        session.run('print(2)', { mode: 'process' }),
        (err: unknown) => err instanceof SessionBusyError && err.status === 409 && err.code === 'SESSION_BUSY' && REQUEST_ID.test(err.requestID ?? ''),
      );
      await sleeper.cancel();
      assert.equal((await sleeper.result()).reason, 'cancelled');
      assert.equal((await queued.result()).stdout, '1\n');
      await session.delete();
      sluice.close();
    });
  });
}

test('an SSE start cut before its answer is retried with its Idempotency-Key: the code runs once', async () => {
  const proxy = await startProxy(server.url);
  const sluice = client('sse', proxy.url);
  try {
    const session = await sluice.sessions.create();
    proxy.cutAfter(1); // the first bytes of the answer to POST /stream
    const r = await session.run('open("runs.txt", "a").write("x")\nprint("ran")', { mode: 'process' });
    assert.equal(proxy.cuts(), 1);
    assert.equal(r.stdout, 'ran\n');
    assert.equal(await session.files.readText('runs.txt'), 'x', 'the program ran once');
    await session.delete();
  } finally {
    sluice.close();
    await proxy.close();
  }
});

test('two executions multiplexed on one WebSocket do not mix', async () => {
  const sluice = client('websocket');
  const session = await sluice.sessions.create();
  const before = socketsOpened;
  // A session runs one execution at a time: B waits in the queue while A streams.
  const a = session.stream('import time\nfor i in range(5):\n    print(f"A{i}", flush=True)\n    time.sleep(0.05)', { mode: 'process' });
  const b = session.stream('for i in range(5):\n    print(f"B{i}")', { mode: 'process' });
  const [ra, rb] = await Promise.all([a.result(), b.result()]);
  assert.equal(ra.stdout, 'A0\nA1\nA2\nA3\nA4\n');
  assert.equal(rb.stdout, 'B0\nB1\nB2\nB3\nB4\n');
  // Two running at once: one of another session, followed on this session's socket while D runs.
  const other = await sluice.sessions.create();
  const c = other.stream('import time\nfor i in range(5):\n    print(f"C{i}", flush=True)\n    time.sleep(0.05)', { mode: 'process', transport: 'sse' });
  const d = session.stream('import time\nfor i in range(5):\n    print(f"D{i}", flush=True)\n    time.sleep(0.05)', { mode: 'process' });
  const follow = session.attach(await c.executionID);
  const arrivals: string[] = [];
  const [rc, rd, rf] = await Promise.all([
    c.result(),
    d.result(),
    (async () => {
      for await (const e of follow) if (e.type === 'stdout') arrivals.push(e.content);
      return follow.result();
    })(),
  ]);
  assert.equal(rd.stdout, 'D0\nD1\nD2\nD3\nD4\n');
  assert.equal(rc.stdout, 'C0\nC1\nC2\nC3\nC4\n');
  assert.equal(rf.stdout, rc.stdout);
  assert.equal(arrivals.join(''), rc.stdout, 'the events read on the socket are C\'s own');
  assert.equal(socketsOpened - before, 1, 'one socket for the session handle');
  await other.delete();
  await session.delete();
  sluice.close();
});

test('typed errors: not found (404), invalid request (400), unauthorized (401), with request ids, on both transports', async () => {
  const sluice = client('sse');
  await assert.rejects(
    sluice.sessions.get('no-such-session'),
    (err: unknown) => err instanceof NotFoundError && err.status === 404 && err.code === 'NOT_FOUND' && REQUEST_ID.test(err.requestID ?? ''),
  );
  await assert.rejects(sluice.executions.get('0123456789abcdef'), NotFoundError);
  await assert.rejects(sluice.sessions.create({ idleTTL: -1 }), (err: unknown) => err instanceof InvalidRequestError && /idle_ttl/.test(err.message) && REQUEST_ID.test(err.requestID ?? ''));
  const wrong = client('sse', server.url, { apiKey: 'wrong-key-0123456789abcdef' });
  await assert.rejects(wrong.sessions.list(), (err: unknown) => err instanceof UnauthorizedError && err.status === 401);
  const session = await sluice.sessions.create();
  const wrongWS = client('websocket', server.url, { apiKey: 'wrong-key-0123456789abcdef' });
  await assert.rejects(wrongWS.session(session.id).run('print(1)'), UnauthorizedError);
  const ws = client('websocket');
  await assert.rejects(ws.session(session.id).attach('0123456789abcdef').result(), NotFoundError);
  await session.delete();
  wrongWS.close();
  ws.close();
});

test('files round-trip byte for byte, list and delete; sessions list, get, delete', async () => {
  const sluice = client('sse');
  const session = await sluice.sessions.create({ env: { GREETING: 'hi' } });
  const bytes = new Uint8Array(256 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + (i >> 8)) & 0xff;
  const written = await session.files.write('bin/data.bin', bytes);
  assert.deepEqual(written, { path: 'bin/data.bin', size: bytes.length });
  assert.deepEqual(await session.files.read('bin/data.bin'), bytes);
  await session.files.write('note.txt', 'héllo ✓\n');
  assert.equal(await session.files.readText('note.txt'), 'héllo ✓\n');
  await session.files.write('blob.txt', new Blob(['from a blob']));
  const r = await session.run('import hashlib\nprint(hashlib.sha256(open("bin/data.bin","rb").read()).hexdigest())', { mode: 'process' });
  const expected = Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('hex');
  assert.equal(r.stdout.trim(), expected, 'the sandbox sees the same bytes');
  await session.run('open("made.bin", "wb").write(bytes(range(256)))', { mode: 'process' });
  assert.deepEqual(await session.files.read('made.bin'), Uint8Array.from({ length: 256 }, (_, i) => i));
  const entries = await session.files.list();
  assert.deepEqual(entries.map((e) => `${e.type}:${e.name}`).sort(), ['directory:bin', 'file:blob.txt', 'file:made.bin', 'file:note.txt']);
  assert.equal((await session.files.list('bin'))[0]?.size, bytes.length);
  await session.files.delete('bin');
  await assert.rejects(session.files.read('bin/data.bin'), NotFoundError);

  assert.ok((await sluice.sessions.list()).some((s) => s.id === session.id));
  const fetched = await sluice.sessions.get(session.id);
  assert.deepEqual(fetched.settings?.envKeys, ['GREETING']);
  const langs = await sluice.languages();
  assert.ok(langs.some((l) => l.language === 'python' && l.installed));
  await sluice.sessions.delete(session.id);
  await assert.rejects(sluice.sessions.get(session.id), NotFoundError);
});

test('executions by id: stdin, events from a seq, cancel', async () => {
  const sluice = client('sse');
  const session = await sluice.sessions.create();
  const stream = session.stream('name = input()\nprint(f"hello {name}", flush=True)\nimport time\ntime.sleep(30)', { mode: 'process' });
  const id = await stream.executionID;
  await sluice.executions.stdin(id, 'Ada\n', { eof: true });
  const replay: ExecutionEvent[] = [];
  for await (const e of sluice.executions.events(id, { from: 2 })) {
    replay.push(e);
    if (e.type === 'stdout') assert.equal((await sluice.executions.cancel(id)).cancelled, true);
  }
  assert.equal(replay[0]?.seq, 2, 'the replay starts at the seq asked for');
  assert.equal(stdoutOf(replay), 'hello Ada\n');
  const done = replay.at(-1);
  assert.ok(done?.type === 'done' && done.reason === 'cancelled');
  const r = await stream.result();
  assert.equal(r.reason, 'cancelled');
  assert.equal(r.stdout, 'hello Ada\n');
  await session.delete();
});

/** What each example of docs/sdk.md prints (browser.ts runs in sdk-browser.test.ts). */
const EXAMPLE_OUTPUT: Record<string, RegExp> = {
  'quickstart.js': /^42\nexit 0 \(exited\) in \d+ ms\n$/,
  'streaming.js': /^execution [0-9a-f]+\ntick 0\n\[0%\] tick 0\n[\s\S]*\[100%\] tick 4\nresult: \{"ticks":5\}\ndone: exited, exit 0\nhello\nexit code 0\n$/,
  'interactive.js': /^name\? hello, Ada\n$/,
  'files.js': /^sum\.bin: 6 0 255\nfile data\/input\.csv 12\nfile data\/sum\.bin 3\n$/,
  'errors.js': /^not found \(404\): .*\ntimed out after \d+ ms \(exit \d+, SIG[A-Z]+\)\n$/,
  'websocket.js': /^first\nsecond\n$/,
  'cancel.js': /^after break: cancelled\naborted after 500 ms\ncancelled: true, signal SIG[A-Z]+\n$/,
  'resume.js': /^step 0\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\nstep 6\nstep 7\ndone: exited\n$/,
  'kernel.js': /^area: 12\.566370614359172\nrestarted: python\nradius is gone\n$/,
  'readme.js': /^3\.5\n0\n1\n2\n$/,
};

test('every example program of docs/sdk.md runs against the server and prints what the page says', async () => {
  const dir = join(REPO_ROOT, 'packages/sdk/dist/examples');
  const programs = readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'browser.js');
  assert.deepEqual(programs.sort(), Object.keys(EXAMPLE_OUTPUT).sort(), 'every example has its expected output here');
  for (const program of programs) {
    const { stdout } = await promisify(execFile)(process.execPath, [join(dir, program)], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_URL: server.url, SLUICE_API_KEY: KEY },
      timeout: 30_000,
    });
    assert.match(stdout, EXAMPLE_OUTPUT[program] ?? /^$/, program);
  }
});

test('attaching from past the end of a finished execution ends at once with no events, on both transports', async () => {
  const sluice = client('sse');
  const session = await sluice.sessions.create();
  const r = await session.run('echo done-here', { language: 'bash' });
  assert.equal(r.stdout, 'done-here\n');
  const info = await sluice.executions.get(r.executionID);
  for (const transport of ['sse', 'websocket'] as const) {
    const c = client(transport);
    const seen: string[] = [];
    for await (const ev of c.session(session.id).attach(r.executionID, { from: info.lastSeq + 1, signal: AbortSignal.timeout(5000) })) seen.push(ev.type);
    assert.deepEqual(seen, [], transport);
    c.close();
  }
  await session.delete();
  sluice.close();
});
