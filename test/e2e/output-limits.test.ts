/**
 * Output volume and content, end to end (real server, real bubblewrap): a 300 MB flood is cut
 * to the output limit (head and tail kept, one `truncated` event for the middle) while the
 * server's memory stays flat; a client that never reads neither blocks the program nor grows
 * the server; a 10 MB line without newline streams in bounded chunks; bytes that are not
 * UTF-8, CR-only progress bars and SSE-lookalike text come through intact; an endless `yes` is
 * killed at the kill threshold with reason `output_limit`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeSSEStream, type ExecutionEvent } from '@sluice/protocol';
import { EventSource } from 'eventsource';
import { startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf, postJSON, readSSE, stream, text, toEvent, type Timed } from './helpers/client.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The server's default output limit (kept bytes per execution). */
const DEFAULT_LIMIT = 16 * MiB;
/** Server B: a larger limit, and a kill threshold below the default 1 GiB. */
const BIG_LIMIT = 33_554_432;
const KILL_BYTES = 50_000_000;
/** How much the server's RSS may grow while a program floods it. */
const RSS_GROWTH_LIMIT = 150 * MiB;

/** Server A: defaults (16 MiB kept, killed past 1 GiB). */
let server: TestServer;
/** Server B: SLUICE_OUTPUT_LIMIT=32 MiB, SLUICE_OUTPUT_KILL_BYTES=50 MB. */
let big: TestServer;
/** Server C: defaults, used only by the never-reading client (a clean memory baseline). */
let slow: TestServer;
before(async () => {
  // Host uid ranges of our own, away from other servers on the machine.
  const uidBase = 3_000_000 + randomInt(0, 50_000) * 192;
  [server, slow, big] = await Promise.all([
    startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: '64' }),
    startServer({ SLUICE_UID_BASE: String(uidBase + 128), SLUICE_UID_COUNT: '64' }),
    startServer({
      SLUICE_UID_BASE: String(uidBase + 64),
      SLUICE_UID_COUNT: '64',
      SLUICE_OUTPUT_LIMIT: String(BIG_LIMIT),
      SLUICE_OUTPUT_KILL_BYTES: String(KILL_BYTES),
    }),
  ]);
});
after(async () => {
  await Promise.all([server?.stop(), slow?.stop(), big?.stop()]);
});

type Done = Extract<Timed, { type: 'done' }>;

async function run(base: string, session: string, body: Record<string, unknown>): Promise<{ events: Timed[]; done: Done }> {
  const events = await stream(base, session, body);
  assertContiguous(events);
  return { events, done: doneOf(events) };
}

/** Resident set size of a process, bytes. */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  assert.ok(kb, `no VmRSS for ${pid}`);
  return Number(kb) * KiB;
}

/** Samples a process's RSS every 25 ms until stopped; reports before, max during, after. */
function sampleRSS(pid: number): { stop(): Promise<{ before: number; max: number; after: number }> } {
  let max = 0;
  let before = 0;
  let running = true;
  const loop = (async () => {
    before = await rss(pid);
    max = before;
    while (running) {
      max = Math.max(max, await rss(pid));
      await sleep(25);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const after = await rss(pid);
      return { before, max: Math.max(max, after), after };
    },
  };
}

const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

function serverPID(s: TestServer): number {
  const pid = s.proc.pid;
  assert.ok(pid !== undefined);
  return pid;
}

/** Concatenated stdout of events in [from, to). */
function stdoutOf(events: readonly ExecutionEvent[], from = 0, to = events.length): string {
  return text(events.slice(from, to), 'stdout');
}

/** Every output chunk is at most 64 KiB of UTF-8. */
function assertChunksBounded(events: readonly ExecutionEvent[]): void {
  for (const e of events) {
    if (e.type === 'stdout' || e.type === 'stderr') {
      const n = Buffer.byteLength(e.content);
      assert.ok(n > 0 && n <= 64 * KiB, `a ${e.type} chunk of ${n} bytes (seq ${e.seq})`);
    }
  }
}

// The 300 MB flood: BLOCKS blocks of 64 KiB ("%08d" index, x padding, newline), then "END\n".
const BLOCK = 64 * KiB;
const BLOCKS = 4800;
const FLOOD_TOTAL = BLOCKS * BLOCK + 4;
const FLOOD_CODE = [
  'import sys',
  'w = sys.stdout.buffer.write',
  `pad = b"x" * ${BLOCK - 9} + b"\\n"`,
  `for i in range(${BLOCKS}):`,
  '    w(b"%08d" % i + pad)',
  'w(b"END\\n")',
].join('\n');

/** Bytes [start, end) of the flood's output (ASCII, so string offsets are byte offsets). */
function floodSlice(start: number, end: number): string {
  const pad = `${'x'.repeat(BLOCK - 9)}\n`;
  const parts: string[] = [];
  const first = Math.floor(start / BLOCK);
  const last = Math.min(BLOCKS - 1, Math.floor((end - 1) / BLOCK));
  for (let i = first; i <= last; i++) parts.push(`${String(i).padStart(8, '0')}${pad}`);
  if (end > BLOCKS * BLOCK) parts.push('END\n');
  return parts.join('').slice(start - first * BLOCK, end - first * BLOCK);
}

test('300 MB of output: exactly 16 MiB kept (head and tail), one truncated event, exited, server RSS flat', async (t) => {
  const pid = serverPID(server);
  // Warm the server up (first sandbox, JIT) so the baseline is not its cold state.
  await run(server.url, 'flood-warmup', { code: 'print("warm")' });
  const sampler = sampleRSS(pid);
  const t0 = performance.now();
  const { events, done } = await run(server.url, 'flood', { code: FLOOD_CODE, timeout: 120 });
  const elapsed = performance.now() - t0;
  const mem = await sampler.stop();
  t.diagnostic(`300 MB flood: ${Math.round(elapsed)} ms; server RSS before ${mb(mem.before)}, max ${mb(mem.max)}, after ${mb(mem.after)}`);

  assert.equal(done.reason, 'exited');
  assert.equal(done.exit_code, 0);
  const truncIdx = events.findIndex((e) => e.type === 'truncated');
  const truncs = events.filter((e) => e.type === 'truncated');
  assert.equal(truncs.length, 1, 'one truncated event');
  const trunc = truncs[0];
  assert.ok(trunc?.type === 'truncated');
  assert.equal(trunc.stream, 'stdout');
  assert.equal(trunc.dropped_bytes, FLOOD_TOTAL - DEFAULT_LIMIT);

  const head = stdoutOf(events, 0, truncIdx);
  const tail = stdoutOf(events, truncIdx + 1);
  assert.ok(head.length > 0, 'the head streams before the truncated event');
  assert.ok(tail.length > 0, 'the tail follows the truncated event');
  assert.equal(head.length + tail.length, DEFAULT_LIMIT, 'exactly the limit is kept');
  assert.ok(head === floodSlice(0, head.length), 'the head is the start of the output, byte for byte');
  assert.ok(tail === floodSlice(FLOOD_TOTAL - tail.length, FLOOD_TOTAL), 'the tail is the end of the output, byte for byte');
  assert.ok(tail.endsWith('\nEND\n'));
  assert.ok(head.startsWith(`00000000${'x'.repeat(100)}`));
  assert.equal(events.filter((e) => e.type === 'stderr').length, 0);
  assertChunksBounded(events);
  // The buffered view folds to the same 16 MiB.
  const view = (await (await fetch(`${server.url}/api/executions/${events[0]?.type === 'start' ? events[0].execution_id : ''}`)).json()) as Record<string, unknown>;
  assert.equal(view['truncated'], true);
  assert.equal(String(view['stdout']).length, DEFAULT_LIMIT);

  assert.ok(mem.max - mem.before < RSS_GROWTH_LIMIT, `server RSS grew by ${mb(mem.max - mem.before)} at most (before ${mb(mem.before)}, max ${mb(mem.max)})`);
  assert.ok(mem.after - mem.before < RSS_GROWTH_LIMIT, `server RSS grew by ${mb(mem.after - mem.before)} after`);
});

test('the limit is exact: limit bytes are all kept, one more is one dropped; both streams share the limit', async () => {
  const write = (n: number): string => `import sys\nsys.stdout.buffer.write(b"a" * ${n})\n`;
  const exact = await run(server.url, 'edges', { code: write(DEFAULT_LIMIT) });
  assert.equal(exact.done.reason, 'exited');
  assert.equal(exact.events.filter((e) => e.type === 'truncated').length, 0);
  assert.equal(text(exact.events, 'stdout').length, DEFAULT_LIMIT);

  const over = await run(server.url, 'edges', { code: write(DEFAULT_LIMIT + 1) });
  const trunc = over.events.filter((e) => e.type === 'truncated');
  assert.equal(trunc.length, 1);
  assert.ok(trunc[0]?.type === 'truncated' && trunc[0].stream === 'stdout' && trunc[0].dropped_bytes === 1, JSON.stringify(trunc));
  assert.equal(text(over.events, 'stdout').length, DEFAULT_LIMIT);

  // 10 MiB of stdout then 10 MiB of stderr: 16 MiB kept in all, the middle of stderr dropped.
  const both = await run(server.url, 'edges', {
    code: 'import sys\nsys.stdout.buffer.write(b"o" * 10485760)\nsys.stdout.flush()\nsys.stderr.buffer.write(b"e" * 10485759 + b"!")\n',
  });
  const out = text(both.events, 'stdout');
  const err = text(both.events, 'stderr');
  assert.equal(out, 'o'.repeat(10 * MiB));
  assert.equal(out.length + err.length, DEFAULT_LIMIT);
  assert.ok(err.endsWith('e!'));
  const t2 = both.events.filter((e) => e.type === 'truncated');
  assert.deepEqual(
    t2.map((e) => (e.type === 'truncated' ? [e.stream, e.dropped_bytes] : [])),
    [['stderr', 20 * MiB - DEFAULT_LIMIT]],
  );
});

/** Removes HTTP/1.1 chunked framing from a complete body. */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    assert.ok(eol > at, `chunk size line at ${at}`);
    const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
    assert.ok(Number.isInteger(size), 'chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

test('a client that never reads does not block the program nor grow the server; it gets everything once it reads', async (t) => {
  const pid = serverPID(slow);
  // Warm up, so the baseline is not the server's cold state.
  await run(slow.url, 'warmup', { code: 'print("warm")' });
  const session = 'never-reads';
  // ~200 MB, after a pause that lets the test find the execution while it runs.
  const body = JSON.stringify({
    code: ['import sys, time', 'time.sleep(1)', 'w = sys.stdout.buffer.write', `b = b"y" * ${BLOCK - 1} + b"\\n"`, 'for i in range(3200):', '    w(b)', 'w(b"END\\n")'].join('\n'),
    timeout: 60,
  });
  const sampler = sampleRSS(pid);
  const sock = connect(Number(new URL(slow.url).port), '127.0.0.1');
  sock.pause();
  const received: Buffer[] = [];
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.write(
    `POST /api/sessions/${session}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  try {
    // Another client finds the execution, then watches it finish.
    const execID = await (async () => {
      const deadline = performance.now() + 5000;
      for (;;) {
        const res = await fetch(`${slow.url}/api/sessions/${session}`);
        if (res.status === 200) {
          const s = (await res.json()) as { running_execution: string | null };
          if (s.running_execution) return s.running_execution;
        } else {
          await res.body?.cancel();
        }
        assert.ok(performance.now() < deadline, 'the execution did not start');
        await sleep(50);
      }
    })();
    const t0 = performance.now();
    let view: Record<string, unknown> = {};
    for (;;) {
      const s = (await (await fetch(`${slow.url}/api/sessions/${session}`)).json()) as { running_execution: string | null };
      if (s.running_execution !== execID) break;
      assert.ok(performance.now() - t0 < 15_000, 'the program is blocked by the client that does not read');
      await sleep(100);
    }
    const finishedAfter = performance.now() - t0;
    const mem = await sampler.stop();
    view = (await (await fetch(`${slow.url}/api/executions/${execID}`)).json()) as Record<string, unknown>;
    t.diagnostic(`never-reading client: program finished ${Math.round(finishedAfter)} ms after it was seen running (1 s of it asleep); server RSS before ${mb(mem.before)}, max ${mb(mem.max)}, after ${mb(mem.after)}`);
    assert.equal(view['state'], 'finished');
    assert.equal(view['reason'], 'exited');
    assert.equal(view['exit_code'], 0);
    assert.equal(view['truncated'], true);
    assert.ok(finishedAfter < 8000, `finished ${Math.round(finishedAfter)} ms after it started`);
    assert.ok(mem.max - mem.before < RSS_GROWTH_LIMIT, `server RSS grew by ${mb(mem.max - mem.before)}`);
    // Meanwhile the server answers other requests at once.
    const h0 = performance.now();
    const health = await fetch(`${slow.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.ok(performance.now() - h0 < 1000);

    // Now read: the stalled stream resumes and delivers the whole log, ending with done.
    const gotAll = new Promise<void>((resolve) => {
      sock.on('data', (b: Buffer) => {
        received.push(b);
        if (b.subarray(-5).toString('latin1') === '0\r\n\r\n' || closed) resolve();
      });
      sock.on('close', () => resolve());
    });
    sock.resume();
    const giveUp = new AbortController();
    await Promise.race([gotAll, sleep(10_000, undefined, { signal: giveUp.signal }).catch(() => {})]);
    giveUp.abort();
    const raw = Buffer.concat(received);
    const headEnd = raw.indexOf('\r\n\r\n');
    assert.ok(headEnd > 0);
    const head = raw.subarray(0, headEnd).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /transfer-encoding: chunked/i);
    const sse = dechunk(raw.subarray(headEnd + 4));
    const events: ExecutionEvent[] = [];
    const source = (async function* (): AsyncGenerator<Uint8Array> {
      yield sse;
    })();
    for await (const msg of decodeSSEStream(source)) events.push(toEvent(JSON.parse(msg.data)));
    assertContiguous(events);
    assert.equal(doneOf(events).reason, 'exited');
    const out = text(events, 'stdout');
    assert.equal(out.length, DEFAULT_LIMIT);
    assert.ok(out.endsWith('y\nEND\n'));
  } finally {
    sock.destroy();
  }
});

test('a 10 MB line without newline arrives whole, in chunks of at most 64 KiB (output limit 32 MiB)', async () => {
  const t0 = performance.now();
  const { events, done } = await run(big.url, 'long-line', { code: 'import sys\nsys.stdout.buffer.write(b"0123456789" * 1000000)\n' });
  const elapsed = performance.now() - t0;
  assert.equal(done.reason, 'exited');
  assert.equal(done.exit_code, 0);
  assert.equal(events.filter((e) => e.type === 'truncated').length, 0);
  const out = text(events, 'stdout');
  assert.equal(out.length, 10_000_000);
  assert.ok(out === '0123456789'.repeat(1_000_000), 'content intact and in order');
  assertChunksBounded(events);
  const chunks = events.filter((e) => e.type === 'stdout').length;
  assert.ok(chunks >= Math.ceil(10_000_000 / (64 * KiB)), `${chunks} chunks`);
  assert.ok(elapsed < 10_000, `${Math.round(elapsed)} ms`);
});

test('invalid UTF-8: a character split across writes decodes once; garbage bytes become U+FFFD', async () => {
  const code = [
    'import sys, time',
    'o = sys.stdout.buffer',
    'e = sys.stderr.buffer',
    'o.write(b"A\\xe2\\x82"); o.flush(); time.sleep(0.2)',
    'o.write(b"\\xacB\\n"); o.flush(); time.sleep(0.05)',
    'o.write(b"bad \\xff end\\n"); o.flush(); time.sleep(0.05)',
    'e.write(b"\\xf0\\x9f"); e.flush(); time.sleep(0.2)',
    'e.write(b"\\x98\\x80 smile\\n"); e.flush(); time.sleep(0.05)',
    'o.write(b"4 bytes: \\xf0\\x9f\\x98"); o.flush(); time.sleep(0.2)',
    'o.write(b"\\x80|\\xc3"); o.flush(); time.sleep(0.05)',
    'o.write(b"\\xa9|\\n")',
  ].join('\n');
  const { events, done } = await run(server.url, 'utf8', { code });
  assert.equal(done.reason, 'exited');
  assert.equal(text(events, 'stdout'), 'A€B\nbad \uFFFD end\n4 bytes: 😀|é|\n');
  assert.equal(text(events, 'stderr'), '😀 smile\n');
  // "A" was not held back waiting for the rest of the character.
  const firstOut = events.find((e) => e.type === 'stdout');
  assert.ok(firstOut?.type === 'stdout' && firstOut.content === 'A', `first chunk ${JSON.stringify(firstOut)}`);

  // An incomplete character at the very end is one U+FFFD.
  const end = await run(server.url, 'utf8', { code: 'import sys\nsys.stdout.buffer.write(b"tail \\xe2\\x82")\n' });
  assert.equal(text(end.events, 'stdout'), 'tail \uFFFD');
});

test('CR-only progress bars, SSE-lookalike text, NUL and ANSI escapes come through SSE intact', async () => {
  const pieces: ['stdout' | 'stderr', string][] = [
    ['stdout', '\rprogress   0%'],
    ['stdout', '\rprogress  25%'],
    ['stdout', '\rprogress  50%'],
    ['stdout', '\rprogress 100%'],
    ['stdout', '\n'],
    ['stdout', 'data: not an event\n\nid: 99\nevent: done\n\n'],
    ['stdout', 'retry: 1\n: a comment\n\r\n\r'],
    ['stderr', 'err\rline\r\n'],
    ['stdout', 'nul\u0000byte\n'],
    ['stdout', '\u001b[31mred\u001b[0m \u001b[2K\u001b[1G\n'],
    ['stderr', '\u001b[1mbold\u001b[0m\u0000\n'],
    ['stdout', 'unicode \u2028 sep \u2029 \ufeff bom\n'],
    ['stdout', 'lone cr at the end\r'],
  ];
  // Each piece written and flushed on its own, a little apart.
  const code = [
    'import sys, json, time',
    `for stream, s in json.loads(${JSON.stringify(JSON.stringify(pieces))}):`,
    '    f = sys.stdout if stream == "stdout" else sys.stderr',
    '    f.write(s)',
    '    f.flush()',
    '    time.sleep(0.03)',
  ].join('\n');
  const expected = (s: 'stdout' | 'stderr'): string => pieces.filter(([p]) => p === s).map(([, v]) => v).join('');

  const res = await postJSON(`${server.url}/api/sessions/special/stream`, { code });
  assert.equal(res.status, 200);
  const execID = res.headers.get('sluice-execution-id');
  assert.ok(execID);
  const events = await readSSE(res);
  assertContiguous(events);
  assert.equal(doneOf(events).reason, 'exited');
  assert.equal(text(events, 'stdout'), expected('stdout'));
  assert.equal(text(events, 'stderr'), expected('stderr'));
  // The progress updates streamed as they were written, not all at the end.
  const progress = events.filter((e) => e.type === 'stdout' && e.content.includes('progress'));
  assert.ok(progress.length >= 3, `${progress.length} progress chunks`);

  // On the wire, no raw CR or NUL: output travels inside JSON, so SSE framing cannot break.
  const wire = await (await fetch(`${server.url}/api/executions/${execID}/events`, { headers: { accept: 'text/event-stream' } })).text();
  assert.ok(!wire.includes('\r'), 'a raw CR on the wire');
  assert.ok(!wire.includes('\u0000'), 'a raw NUL on the wire');
  for (const line of wire.split('\n')) {
    assert.ok(line === '' || /^(id|event|data|retry): /.test(line) || line.startsWith(':'), `unexpected SSE line ${JSON.stringify(line.slice(0, 80))}`);
  }

  // A real EventSource client (the npm `eventsource` package) reads the same text.
  const got = await new Promise<{ stdout: string; stderr: string; done: number }>((resolve, reject) => {
    const es = new EventSource(`${server.url}/api/executions/${execID}/events`);
    const acc = { stdout: '', stderr: '', done: 0 };
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`EventSource did not see done: ${JSON.stringify(acc)}`));
    }, 10_000);
    for (const s of ['stdout', 'stderr'] as const) {
      es.addEventListener(s, (m) => {
        acc[s] += (JSON.parse(m.data) as { content: string }).content;
      });
    }
    es.addEventListener('done', () => {
      acc.done++;
      clearTimeout(timer);
      es.close();
      resolve(acc);
    });
  });
  assert.deepEqual(got, { stdout: expected('stdout'), stderr: expected('stderr'), done: 1 });
});

test('stdout and stderr interleaving is preserved in seq order', async () => {
  const n = 20;
  const code = ['import sys, time', `for i in range(${n}):`, '    print(f"out {i}")', '    time.sleep(0.01)', '    print(f"err {i}", file=sys.stderr)', '    time.sleep(0.01)'].join('\n');
  const { events, done } = await run(server.url, 'interleave', { code });
  assert.equal(done.reason, 'exited');
  // Merge consecutive chunks of one stream; the runs must alternate exactly as written.
  const runs: string[] = [];
  let last: string | null = null;
  for (const e of events) {
    if (e.type !== 'stdout' && e.type !== 'stderr') continue;
    if (e.type === last) runs[runs.length - 1] += e.content;
    else runs.push(`${e.type}:${e.content}`);
    last = e.type;
  }
  const expected = Array.from({ length: n }, (_, i) => [`stdout:out ${i}\n`, `stderr:err ${i}\n`]).flat();
  assert.deepEqual(runs, expected);
});

test('an endless `yes` is killed past SLUICE_OUTPUT_KILL_BYTES with reason output_limit, keeping exactly the limit', async () => {
  const t0 = performance.now();
  const { events, done } = await run(big.url, 'yes', { language: 'bash', code: 'yes', timeout: 30 });
  const elapsed = performance.now() - t0;
  assert.equal(done.reason, 'output_limit');
  assert.ok(elapsed < 10_000, `killed after ${Math.round(elapsed)} ms`);
  const truncIdx = events.findIndex((e) => e.type === 'truncated');
  const trunc = events[truncIdx];
  assert.ok(trunc?.type === 'truncated', 'a truncated event');
  assert.equal(trunc.stream, 'stdout');
  const head = stdoutOf(events, 0, truncIdx);
  const tail = stdoutOf(events, truncIdx + 1);
  assert.equal(head.length + tail.length, BIG_LIMIT, 'exactly the output limit is kept');
  const written = head.length + tail.length + trunc.dropped_bytes;
  assert.ok(written > KILL_BYTES, `${written} bytes written before the kill`);
  assert.ok(written < KILL_BYTES + 4 * MiB, `${written} bytes accepted: the kill came late`);
  assert.ok(/^(?:y\n)+$/.test(head), 'the head is whole lines of y');
  assert.ok(/^\n?(?:y\n)*y?$/.test(tail), 'the tail is the end of the y stream');
  assert.equal(events.filter((e) => e.type === 'stderr').length, 0);
  assertChunksBounded(events);
});
