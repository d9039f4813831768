/**
 * Slow and abusive clients end to end (docs/streaming.md): a slowloris that
 * sends its headers a byte at a time, or its body too slowly, is cut off by the header and
 * request timeouts (408, connection closed); an oversized header block is refused (431); a
 * storm of reconnects to a finished execution answers 204 each time with the server's memory
 * and descriptors flat; past SLUICE_MAX_CONNECTIONS new connections are closed as they arrive.
 * Throughout, a well-behaved session keeps streaming on time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from '../helpers/server.js';
import { assertContiguous, doneOf, postJSON, readSSE, text, type Timed } from '../helpers/client.js';

const HEADERS_TIMEOUT_S = 1;
const REQUEST_TIMEOUT_S = 2;
const MAX_CONNECTIONS = 64;
const UID_BASE = 7_000_000 + randomInt(0, 50_000) * 64;

let server: TestServer;
let port: number;
before(async () => {
  server = await startServer({
    SLUICE_HEADERS_TIMEOUT: String(HEADERS_TIMEOUT_S),
    SLUICE_REQUEST_TIMEOUT: String(REQUEST_TIMEOUT_S),
    SLUICE_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: '64',
    // No pre-started shells: their kernels start when the pool settles, at a time of their own,
    // and each holds descriptors of the server for good; the storm test counts descriptors.
    SLUICE_POOL_SIZE: '0',
  });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server?.stop();
});

/** What a raw connection received and when it closed (ms after it opened). */
interface RawOutcome {
  received: string;
  closedAfterMs: number;
}

/**
 * Opens a raw TCP connection, writes `head` at once and then `drip` one byte every `everyMs`
 * until the server closes the connection (or `giveUpMs` passes, which fails the test).
 */
function rawClient(head: string, drip: string, everyMs: number, giveUpMs: number): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`the server kept a slow connection open for ${giveUpMs} ms; got ${JSON.stringify(received)}`));
    }, giveUpMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (socket.writable) socket.write(drip[i++ % drip.length] ?? 'x');
      }, everyMs);
    });
    socket.on('data', (t: string) => (received += t));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ received, closedAfterMs: performance.now() - t0 });
    });
  });
}

/** Streams a ticking program and checks every tick came, in order, about on time. */
async function bystander(session: string, ticks: number, everyS: number): Promise<void> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, {
    code: `for i in $(seq 0 ${ticks - 1}); do echo "tick $i"; sleep ${everyS}; done`,
    language: 'bash',
  });
  assert.equal(res.status, 200);
  const events = await readSSE(res);
  assertContiguous(events);
  assert.equal(text(events, 'stdout'), Array.from({ length: ticks }, (_, i) => `tick ${i}\n`).join(''));
  assert.equal(doneOf(events).reason, 'exited');
  const stdout = events.filter((e): e is Extract<Timed, { type: 'stdout' }> => e.type === 'stdout');
  for (let i = 1; i < stdout.length; i++) {
    const gap = (stdout[i]?.arrivedAt ?? 0) - (stdout[i - 1]?.arrivedAt ?? 0);
    assert.ok(gap < everyS * 1000 + 1000, `tick ${i} arrived ${Math.round(gap)} ms after the one before`);
  }
}

async function healthzMs(): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
  return performance.now() - t0;
}

/** The server process's resident memory (bytes) and open descriptors. */
async function usage(): Promise<{ rss: number; fds: number }> {
  const pid = server.proc.pid;
  assert.ok(pid);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return { rss: kb * 1024, fds: (await readdir(`/proc/${pid}/fd`)).length };
}

test('slowloris: headers one byte per 500 ms, or a body that crawls, are cut off by the timeouts; the server keeps serving', async () => {
  const streaming = bystander('beside-slowloris', 12, 0.25);
  const headerDrips = Array.from({ length: 20 }, () => rawClient('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'abcdef', 500, 8000));
  const bodyDrip = rawClient(
    'POST /api/sessions/slow-body/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"code": "',
    'a',
    500,
    8000,
  );
  // The server answers others promptly while the slow connections hang on.
  await sleep(300);
  assert.ok((await healthzMs()) < 1000);

  for (const o of await Promise.all(headerDrips)) {
    assert.ok(o.closedAfterMs < (HEADERS_TIMEOUT_S + 2.5) * 1000, `closed after ${Math.round(o.closedAfterMs)} ms`);
    assert.match(o.received, /^HTTP\/1\.1 408 /, 'answered 408 before closing');
    const body = o.received.slice(o.received.indexOf('\r\n\r\n') + 4);
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'INVALID_REQUEST');
  }
  const slowBody = await bodyDrip;
  assert.ok(slowBody.closedAfterMs < (REQUEST_TIMEOUT_S + 2.5) * 1000, `slow body closed after ${Math.round(slowBody.closedAfterMs)} ms`);
  assert.match(slowBody.received, /^HTTP\/1\.1 408 /);
  const noSession = await fetch(`${server.url}/api/sessions/slow-body`);
  assert.equal(noSession.status, 404, 'the crawling request never ran');
  await noSession.body?.cancel();

  await streaming;
  assert.ok((await healthzMs()) < 1000);
});

test('a header block over 16 KiB is refused with 431 and the connection closed', async () => {
  const streaming = bystander('beside-big-headers', 6, 0.2);
  const big = `GET /healthz HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 64 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(1000)}\r\n`).join('')}\r\n`;
  const o = await rawClient(big, '', 60_000, 5000);
  assert.match(o.received, /^HTTP\/1\.1 431 /);
  const body = JSON.parse(o.received.slice(o.received.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'INVALID_REQUEST');
  assert.match(body.error.message, /^request headers: expected at most 16384 bytes/);
  // Just under the limit is fine.
  const res = await fetch(`${server.url}/healthz`, { headers: { 'x-filler': 'z'.repeat(12 * 1024) } });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  await streaming;
});

test('a reconnect storm on a finished execution: 204 every time, memory and descriptors stay flat', async (t) => {
  const res = await postJSON(`${server.url}/api/sessions/storm/stream`, { code: 'for i in $(seq 1 50); do echo "line $i"; done', language: 'bash' });
  const id = res.headers.get('sluice-execution-id');
  const events = await readSSE(res);
  const last = events[events.length - 1];
  assert.ok(id && last?.type === 'done');

  /** 200 reconnects, 20 at a time, each as an EventSource resuming after the last event. */
  const storm = async (): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 200) {
        const n = next++;
        const headers: Record<string, string> = n % 2 === 0 ? { 'last-event-id': String(last.seq), accept: 'text/event-stream' } : {};
        const url = n % 2 === 0 ? `${server.url}/api/executions/${id}/events` : `${server.url}/api/executions/${id}/events?from=${last.seq + 1}`;
        const r = await fetch(url, { headers });
        assert.equal(r.status, 204, `reconnect ${n}`);
        assert.equal(await r.text(), '');
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
  };
  const streaming = bystander('beside-storm', 10, 0.2);
  await storm();
  await sleep(200);
  const before = await usage();
  for (let round = 0; round < 3; round++) await storm();
  await streaming;
  // The count moves with what else the server does (the bystander's sandbox ending), so it is
  // polled until it settles: a leak of even one descriptor per reconnect (600) never comes back
  // down.
  let afterStorms = await usage();
  const deadline = Date.now() + 15_000;
  while (afterStorms.fds > before.fds + 5 && Date.now() < deadline) {
    await sleep(100);
    afterStorms = await usage();
  }
  t.diagnostic(`600 reconnects: fds ${before.fds} → ${afterStorms.fds}, RSS ${Math.round(before.rss / 1048576)} → ${Math.round(afterStorms.rss / 1048576)} MiB`);
  assert.ok(afterStorms.fds <= before.fds + 5, `descriptors ${before.fds} → ${afterStorms.fds} after 600 more reconnects`);
  assert.ok(afterStorms.rss - before.rss < 48 * 1024 * 1024, `RSS grew by ${Math.round((afterStorms.rss - before.rss) / 1024 / 1024)} MiB`);
  // Earlier events are still replayed to whoever asks for them.
  const replay = await fetch(`${server.url}/api/executions/${id}/events?from=${last.seq}`, { headers: { accept: 'application/x-ndjson' } });
  assert.equal(replay.status, 200);
  assert.match(await replay.text(), /"type":"done"/);
});

test(`past SLUICE_MAX_CONNECTIONS (${MAX_CONNECTIONS}) new connections are closed at once; room returns when they go`, async () => {
  // Fill the server with idle connections (each will be cut by the header timeout in about 1 s).
  const idle: Socket[] = [];
  const closedEarly: number[] = [];
  await Promise.all(
    Array.from({ length: MAX_CONNECTIONS + 8 }, (_, i) => {
      return new Promise<void>((resolve) => {
        const t0 = performance.now();
        const s = connect(port, '127.0.0.1', () => resolve());
        s.on('error', () => resolve());
        s.on('close', () => {
          if (performance.now() - t0 < HEADERS_TIMEOUT_S * 1000 * 0.6) closedEarly.push(i);
          resolve();
        });
        idle.push(s);
      });
    }),
  );
  await sleep(300);
  // This process's own keep-alive connections to the server count too: at least the 8 extra were dropped.
  assert.ok(closedEarly.length >= 8, `${closedEarly.length} connections were dropped at once`);
  for (const s of idle) s.destroy();
  await sleep(200);
  // Room again: the server serves as before.
  assert.ok((await healthzMs()) < 1000);
  await bystander('beside-connections', 4, 0.1);
});
