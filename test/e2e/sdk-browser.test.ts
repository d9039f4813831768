/**
 * The SDK's browser bundle (packages/sdk/dist/sluice.browser.js) in a real browser, Debian's
 * Chromium driven by playwright-core, against a real server: run, stream, break, stdin, files
 * and typed errors from the page on both transports (the WebSocket authenticated by its
 * subprotocol, as browsers must), and the browser example of docs/sdk.md.
 *
 * The server sends no CORS headers, so the page is served the way docs/sdk.md recommends: from
 * one origin with the API, here a small loopback server that serves the page and the bundle and
 * passes everything else (HTTP and WebSocket upgrades) through to Sluice.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type * as SDK from '@sluice/sdk';
import { listenLoopback } from './helpers/net.js';
import { REPO_ROOT, startServer, type TestServer } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'sdk-browser-key-0123456789abcdef';
const SDK_DIST = join(REPO_ROOT, 'packages/sdk/dist');
const noBrowser = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;
if (noBrowser) process.stdout.write(`# sdk-browser: skipped, ${noBrowser}\n`);

let server: TestServer;
let front: { url: string; close(): Promise<void> };
let browser: Browser;

/** The page's head: the key (as the browser example reads it) and the import map to the bundle. */
const HEAD = `<meta charset="utf-8"><meta name="sluice-key" content="${KEY}">
<script type="importmap">{"imports": {"@sluice/sdk/browser": "/sluice.browser.js"}}</script>`;

const PAGES: Record<string, { type: string; body: () => string | Buffer }> = {
  '/': { type: 'text/html', body: () => `<!doctype html>${HEAD}<title>sdk</title><body></body>` },
  '/favicon.ico': { type: 'image/x-icon', body: () => '' },
  '/example': { type: 'text/html', body: () => `<!doctype html>${HEAD}<title>example</title><pre id="out"></pre><script type="module" src="/examples/browser.js"></script>` },
  '/sluice.browser.js': { type: 'text/javascript', body: () => readFileSync(join(SDK_DIST, 'sluice.browser.js')) },
  '/sluice.browser.js.map': { type: 'application/json', body: () => readFileSync(join(SDK_DIST, 'sluice.browser.js.map')) },
  '/examples/browser.js': { type: 'text/javascript', body: () => readFileSync(join(SDK_DIST, 'examples/browser.js')) },
};

/** A loopback origin serving PAGES and passing every other request and upgrade to `target`. */
async function startFront(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const sockets = new Set<Socket | Duplex>();
  const front: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const page = PAGES[req.url ?? ''];
    if (page && req.method === 'GET') {
      res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-store' });
      res.end(page.body());
      return;
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy()); // a reader that left: the server sees it leave too
    req.pipe(forward);
  });
  front.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  front.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const up = connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    sockets.add(up);
    const end = (): void => {
      socket.destroy();
      up.destroy();
      sockets.delete(up);
    };
    up.on('error', end).on('close', end);
    socket.on('error', end).on('close', end);
  });
  return listenLoopback(front, sockets);
}

before(async () => {
  if (noBrowser) return;
  server = await startServer({ SLUICE_API_KEYS: KEY });
  front = await startFront(server.url);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  if (noBrowser) return;
  await browser?.close();
  await front?.close();
  await server?.stop();
});

/** A fresh page of the front origin, with its errors collected for the failure messages. */
async function openPage(path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Failed requests are the SDK's to report (the tests provoke 404s); anything else is a bug.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console: ${msg.text()}`);
  });
  await page.goto(`${front.url}${path}`);
  return { page, errors };
}

test('in Chromium, the bundle runs, streams, cancels on break, writes stdin, moves files and throws typed errors on both transports', { skip: noBrowser, timeout: 60_000 }, async () => {
  const { page, errors } = await openPage('/');
  const report = await page.evaluate(async ({ key, origin }) => {
    // Runs in the page: the bundle, a real fetch, ReadableStream and WebSocket.
    const bundle = '/sluice.browser.js';
    const sdk = (await import(bundle)) as typeof SDK;
    const out: Record<string, unknown> = { hasNodeGlobals: typeof (globalThis as { process?: unknown }).process !== 'undefined' };
    for (const transport of ['sse', 'websocket'] as const) {
      const sluice = new sdk.Sluice({ baseURL: origin, apiKey: key, transport });
      const session = await sluice.sessions.create();
      const run = await session.run('import sys\nprint(6 * 7)\nprint("e", file=sys.stderr)\nsys.exit(2)', { mode: 'process' });

      const seqs: number[] = [];
      let text = '';
      for await (const e of session.stream('import time\nfor i in range(3):\n    print(f"line {i}")\n    time.sleep(0.05)', { mode: 'process' })) {
        seqs.push(e.seq);
        if (e.type === 'stdout') text += e.content;
      }

      const long = session.stream('import time\nprint("go", flush=True)\ntime.sleep(60)', { mode: 'process' });
      const longID = await long.executionID;
      for await (const e of long) if (e.type === 'stdout') break;
      const afterBreak = await sluice.executions.events(longID).result();

      const interactive = session.stream('print(input()[::-1])', { mode: 'process' });
      await interactive.stdin('abc\n');
      await interactive.closeStdin();
      const reversed = (await interactive.result()).stdout;

      const bytes = Uint8Array.from({ length: 1024 }, (_, i) => (i * 31) & 0xff);
      await session.files.write('all.bin', bytes);
      const back = await session.files.read('all.bin');
      const sameBytes = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
      const listed = (await session.files.list()).map((f) => `${f.name}:${f.size}`);

      let notFound = '';
      try {
        await sluice.sessions.get('no-such-session');
      } catch (err) {
        notFound = err instanceof sdk.NotFoundError ? `${err.name} ${err.status} ${err.requestID === undefined ? 'no id' : 'id'}` : String(err);
      }
      await session.delete();
      sluice.close();
      out[transport] = { run: [run.stdout, run.stderr, run.exitCode, run.reason], seqs, text, afterBreak: afterBreak.reason, reversed, sameBytes, listed, notFound };
    }
    return out;
  }, { key: KEY, origin: front.url });
  await page.close();
  assert.deepEqual(errors, []);
  assert.equal(report['hasNodeGlobals'], false, 'a real browser page, no Node globals');
  for (const transport of ['sse', 'websocket']) {
    const got = report[transport] as Record<string, unknown> & { seqs: number[] };
    // Every event once, in order: seq 1..n with no hole. How many there are depends on timing:
    // print() writes a line and its newline apart, and a loaded machine may emit them apart.
    assert.deepEqual(got.seqs, got.seqs.map((_, i) => i + 1), `${transport}: seqs ${got.seqs.join(',')}`);
    assert.ok(got.seqs.length >= 5, `${transport}: start, three lines' output and done (${got.seqs.length} events)`);
    assert.deepEqual(
      { ...got, seqs: 'checked' },
      {
        run: ['42\n', 'e\n', 2, 'exited'],
        seqs: 'checked',
        text: 'line 0\nline 1\nline 2\n',
        afterBreak: 'cancelled',
        reversed: 'cba\n',
        sameBytes: true,
        listed: ['all.bin:1024'],
        notFound: 'NotFoundError 404 id',
      },
      transport,
    );
  }
});

test("docs/sdk.md's browser example runs in Chromium as a page module", { skip: noBrowser, timeout: 30_000 }, async () => {
  const { page, errors } = await openPage('/example');
  await page.waitForSelector('body[data-state="done"]', { timeout: 20_000 }).catch(() => {
    throw new Error(`the example did not finish: ${errors.join('; ') || 'no error reported'}`);
  });
  const text = await page.textContent('#out');
  await page.close();
  assert.deepEqual(errors, []);
  assert.equal(text, 'line 0\nline 1\nline 2\nfile: from the page\n');
});
