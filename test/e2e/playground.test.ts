/**
 * The playground (packages/web, served by the server at `GET /`) in Debian's Chromium driven by
 * playwright-core, against real servers with real sandboxes: code typed and run with the
 * keyboard, lines shown before the program ends, cancel, ANSI colours and carriage-return
 * redraws, a progress bar, a matplotlib figure, SVG and JSON results, an HTML result that tries
 * to reach the page and cannot, a stream cut mid-way and resumed without loss, files up and
 * down, the agent tab against a scripted model, and the API-key prompt. Every page is checked
 * for requests to another origin and console errors. Screenshots of each state go to
 * test-results/playground/ (ignored by git).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { listenLoopback, type Listening } from './helpers/net.js';
import { assertScriptUsed, startScriptedLLM, toolCallReply, type ScriptedLLM } from './helpers/scripted-llm.js';
import { REPO_ROOT, startServer, type TestServer } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'playground-key-0123456789abcdef';
const SHOTS = join(REPO_ROOT, 'test-results', 'playground');
const noBrowser = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;
if (noBrowser) process.stdout.write(`# playground: skipped, ${noBrowser}\n`);

let llm: ScriptedLLM;
/** A server with a scripted model and no keys. */
let server: TestServer;
/** A server that requires KEY. */
let keyed: TestServer;
let browser: Browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  llm = await startScriptedLLM();
  server = await startServer({ SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_API_KEY: 'sk-test-playground', SLUICE_LLM_MODEL: 'scripted-model' });
  keyed = await startServer({ SLUICE_API_KEYS: KEY });
  if (!noBrowser) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], downloadsPath: join(SHOTS, 'downloads') });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await keyed?.stop();
  await llm?.close();
});

/** A page on the playground with what must never happen collected: console errors, page errors, requests to other origins. */
interface Playground {
  page: Page;
  problems: string[];
  /** Every request the page and its frames sent, as URLs. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Console messages that are the security working, not a fault: an HTML result's script and form
 * refused by its sandbox, its image from another origin refused by the CSP it inherits.
 */
const EXPECTED_CONSOLE =
  /^(Blocked script execution in 'about:srcdoc' because the document's frame is sandboxed|Blocked form submission to '\/leak-form' because the form's frame is sandboxed|Loading the image 'https:\/\/example\.invalid\/)/;

/** Opens the playground of `base` and waits until it is ready (unless `ready` is false). */
async function open(base: string, ready = true): Promise<Playground> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const origin = new URL(base).origin;
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const at = msg.location();
    if (msg.type() === 'error' && !EXPECTED_CONSOLE.test(msg.text())) problems.push(`console: ${msg.text()} (${at.url}:${at.lineNumber}:${at.columnNumber})`);
  });
  // A request counts once it left the browser. To another origin, that is when it reaches the
  // network stage, where this route sees it (and aborts it); a request the CSP refuses never
  // gets there, whatever error Chromium then reports for it. To ours: answered, or failed for
  // any reason but the CSP.
  const sent = (url: string): void => {
    requests.push(url);
    if (/^(data|blob|about):/.test(url)) return;
    if (new URL(url).origin !== origin) problems.push(`request to another origin: ${url}`);
  };
  const foreign = (url: string): boolean => !/^(data|blob|about):/.test(url) && new URL(url).origin !== origin;
  await context.route(
    (url) => foreign(url.href),
    (route) => {
      sent(route.request().url());
      return route.abort();
    },
  );
  page.on('requestfinished', (req) => {
    if (!foreign(req.url())) sent(req.url());
  });
  page.on('requestfailed', (req) => {
    if (!foreign(req.url()) && !/BLOCKED_BY_CSP/i.test(req.failure()?.errorText ?? '')) sent(req.url());
  });
  await page.goto(`${base}/`);
  if (ready) await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
  return { page, problems, requests, close: () => context.close() };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** The editor's content element, in the editor's shadow root (page-side expression). */
const EDITOR_CONTENT = "document.getElementById('editor').shadowRoot.querySelector('.cm-content')";

/** Replaces the editor's code as a paste does (no auto-indent or bracket closing in the way). */
async function setCode(page: Page, code: string): Promise<void> {
  await page.focus('.cm-content');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.setData('text/plain', ${JSON.stringify(code)});
    ${EDITOR_CONTENT}.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  })()`);
}

/** Runs the editor's code with the keyboard and waits for its end (the status names a reason). */
async function runAndWait(page: Page, timeoutMs = 30_000): Promise<string> {
  await page.focus('.cm-content');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('body[data-run="running"]', { timeout: 10_000 }).catch(() => undefined);
  await page.waitForSelector('body[data-run="idle"]', { timeout: timeoutMs });
  // The output goes with the status, so a failed assertion on it shows why the program failed.
  return `${(await page.textContent('#status')) ?? ''}\n${(await outputLines(page)).join('\n')}`;
}

/**
 * Polls the page until the expression `expr` is true; fails after `timeoutMs`. Page-side code is
 * written as strings (the tests compile without the DOM lib) and evaluated over DevTools, which
 * the page's CSP allows (waitForFunction would need 'unsafe-eval').
 */
async function waitUntil(page: Page, expr: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate<boolean>(`Boolean(${expr})`)) return;
    if (Date.now() > deadline) throw new Error(`the page did not come to ${expr} in ${timeoutMs} ms; output: ${JSON.stringify(await outputLines(page))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the output pane shows `text`. */
async function waitForOutput(page: Page, text: string, timeoutMs = 20_000): Promise<void> {
  await waitUntil(page, `(document.getElementById('output')?.textContent ?? '').includes(${JSON.stringify(text)})`, timeoutMs);
}

/** The output pane's lines as text. */
async function outputLines(page: Page): Promise<string[]> {
  return page.$$eval('#output .line', (lines) => lines.map((l) => l.textContent ?? ''));
}

test('GET / answers JSON to API clients and the page to browsers, with a strict CSP and caching', async () => {
  const plain = await fetch(`${server.url}/`);
  assert.equal(plain.status, 200);
  assert.match(plain.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await plain.json()) as { name: string; agent: boolean; endpoints: string[] };
  assert.equal(body.name, 'sluice');
  assert.equal(body.agent, true, 'this server has a model configured');
  for (const accept of ['*/*', 'application/json', 'application/json, text/html;q=0.5']) {
    const r = await fetch(`${server.url}/`, { headers: { accept } });
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/, accept);
    await r.body?.cancel();
  }
  const noLLM = (await (await fetch(`${keyed.url}/`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { agent: boolean };
  assert.equal(noLLM.agent, false);

  const html = await fetch(`${server.url}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  assert.equal(html.status, 200);
  assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(html.headers.get('vary'), 'Accept', 'one URL, two representations');
  const csp = html.headers.get('content-security-policy') ?? '';
  for (const directive of ["default-src 'self'", "script-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(html.headers.get('cache-control'), 'no-cache');
  assert.equal(html.headers.get('x-content-type-options'), 'nosniff');
  const page = await html.text();
  const script = /src="\/ui\/(app-[A-Z0-9]+\.js)"/.exec(page)?.[1];
  const style = /href="\/ui\/(style-[A-Z0-9]+\.css)"/.exec(page)?.[1];
  assert.ok(script && style, 'the page names its hashed script and style sheet');
  assert.doesNotMatch(page.replace(/<script type="module" src="[^"]+"><\/script>/, ''), /<script/i, 'no inline script');

  const js = await fetch(`${server.url}/ui/${script}`);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  await js.body?.cancel();
  const css = await fetch(`${server.url}/ui/${style}`);
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  const etag = css.headers.get('etag');
  await css.body?.cancel();
  assert.ok(etag);
  assert.equal((await fetch(`${server.url}/ui/${style}`, { headers: { 'if-none-match': etag } })).status, 304);
  for (const bad of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/.hidden']) {
    const r = await fetch(`${server.url}${bad}`);
    assert.equal(r.status, 404, bad);
    await r.body?.cancel();
  }

  // With keys: the page and its files are open (they hold no secret), the API and the JSON are not.
  assert.equal((await fetch(`${keyed.url}/`, { headers: { accept: 'text/html' } })).status, 200);
  assert.equal((await fetch(`${keyed.url}/ui/${script}`)).status, 200);
  assert.equal((await fetch(`${keyed.url}/`)).status, 401);
  assert.equal((await fetch(`${keyed.url}/api/languages`, { headers: { accept: 'text/html' } })).status, 401);
});

test('keyboard only: typed code runs on Ctrl+Enter, and lines show before the program has printed the next', { skip: noBrowser, timeout: 90_000 }, async () => {
  const p = await open(server.url);
  const { page } = p;
  try {
    assert.equal(await page.evaluate<boolean>(`${EDITOR_CONTENT} === document.getElementById('editor').shadowRoot.activeElement`), true, 'the editor has the focus at start');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type('print("typed " + "by keyboard")');
    assert.match(await runAndWait(page), /^Finished · exit code 0 · reason exited/);
    assert.deepEqual(await outputLines(page), ['typed by keyboard']);
    await shot(page, '01-keyboard-run');

    // The page notes when each line first shows; the program says when it printed each one.
    await page.evaluate(`(() => {
      const seen = {};
      window.seen = seen;
      new MutationObserver(() => {
        for (const line of document.querySelectorAll('#output .line')) {
          const word = /^(first|second|last) /.exec(line.textContent ?? '')?.[1];
          if (word !== undefined) seen[word] ??= Date.now();
        }
      }).observe(document.getElementById('output'), { childList: true, subtree: true, characterData: true });
    })()`);
    await setCode(page, 'import time\nfor word in ("first", "second", "last"):\n    print(f"{word} {time.time() * 1000:.0f}", flush=True)\n    time.sleep(1.5)\n');
    await page.keyboard.press('Control+Enter');
    await waitForOutput(page, 'first');
    assert.equal(await page.getAttribute('body', 'data-run'), 'running', 'the first line shows while the program runs');
    await shot(page, '02-streaming');
    await page.waitForSelector('body[data-run="idle"]', { timeout: 30_000 });
    const seen = await page.evaluate<Record<string, number>>('window.seen');
    const printed = Object.fromEntries((await outputLines(page)).map((l) => l.split(' ')).map(([w, t]) => [w, Number(t)]));
    assert.ok(seen['first'] !== undefined && printed['second'] !== undefined && seen['first'] < printed['second'], `"first" showed (${seen['first']}) before "second" was printed (${printed['second']})`);
    assert.ok(seen['second'] !== undefined && printed['last'] !== undefined && seen['second'] < printed['last'], `"second" showed (${seen['second']}) before "last" was printed (${printed['last']})`);
    assert.match((await page.textContent('#status')) ?? '', /Finished · exit code 0 · reason exited · \d/);

    // Tab leaves the editor (no focus trap) and reaches the Run button's neighbours.
    await page.focus('.cm-content');
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate<string>("document.activeElement?.id || document.activeElement?.tagName || ''"));
    }
    assert.ok(order.includes('output'), `Tab from the editor reaches the output: ${order.join(', ')}`);
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

test('Cancel stops a running program and the end says so', { skip: noBrowser, timeout: 60_000 }, async () => {
  const p = await open(server.url);
  const { page } = p;
  try {
    await setCode(page, 'import time\nwhile True:\n    print("tick", flush=True)\n    time.sleep(0.3)\n');
    await page.keyboard.press('Control+Enter');
    await waitForOutput(page, 'tick');
    await page.focus('#cancel');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-run="idle"]', { timeout: 20_000 });
    assert.match((await page.textContent('#status')) ?? '', /^Cancelled · .* · reason cancelled · /);
    assert.equal(await page.getAttribute('#status', 'data-outcome'), 'failed');
    await shot(page, '03-cancelled');
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

test('ANSI colours become styled text, carriage returns redraw the line, progress fills the bar, markup stays text', { skip: noBrowser, timeout: 60_000 }, async () => {
  const p = await open(server.url);
  const { page } = p;
  try {
    await setCode(
      page,
      [
        'import sys, time',
        'from sluice import progress',
        'print("\\x1b[31mred\\x1b[0m and \\x1b[1;32mbold green\\x1b[0m")',
        'for i in range(0, 101, 25):',
        '    print(f"\\rdownload {i}%", end="", flush=True)',
        '    time.sleep(0.05)',
        'print()',
        'progress(60, "Halfway there")',
        'print("<b>not bold</b><img src=x onerror=alert(1)>")',
        'print("oops", file=sys.stderr)',
      ].join('\n'),
    );
    assert.match(await runAndWait(page), /exit code 0/);
    const lines = await outputLines(page);
    assert.deepEqual(lines, ['red and bold green', 'download 100%', '<b>not bold</b><img src=x onerror=alert(1)>', 'oops']);
    assert.equal(await page.textContent('#output span.ansi-fg-1'), 'red');
    assert.equal(await page.textContent('#output span.ansi-fg-2.ansi-bold'), 'bold green');
    assert.equal(await page.textContent('#output span.stderr'), 'oops');
    assert.equal(await page.$$eval('#output b, #output img', (n) => n.length), 0, 'program text never became markup');
    assert.equal(await page.isVisible('#progress'), true);
    assert.equal(await page.evaluate<number>("document.getElementById('progress-bar').value"), 60);
    assert.equal(await page.textContent('#progress-label'), 'Halfway there 60%');
    await shot(page, '04-ansi-progress');
    assert.ok((await page.evaluate<number>('document.documentElement.scrollWidth')) <= 1200, 'no horizontal scrolling at 1200 px');
    // A phone-sized screen: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok((await page.evaluate<number>('document.documentElement.scrollWidth')) <= 390, 'no horizontal scrolling at 390 px');
    await shot(page, '04b-phone');
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

test('results: a matplotlib figure inline, SVG through <img>, JSON as a collapsible tree', { skip: noBrowser, timeout: 90_000 }, async () => {
  const p = await open(server.url);
  const { page } = p;
  try {
    await page.selectOption('#mode', 'kernel');
    await setCode(
      page,
      [
        'import matplotlib.pyplot as plt',
        'from sluice import result',
        'class Svg:',
        '    def _repr_svg_(self):',
        '        return \'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><script>parent.document.title="svg"</script><rect width="40" height="20" fill="teal"/></svg>\'',
        'result(Svg())',
        'result({"rows": [1, 2, {"deep": None}], "ok": True})',
        'plt.plot([1, 2, 3], [1, 4, 9])',
        'plt.title("squares")',
      ].join('\n'),
    );
    assert.match(await runAndWait(page, 60_000), /exit code 0/);
    await page.waitForSelector('#output .result img[src^="data:image/png;base64,"]', { timeout: 10_000 });
    const width = (selector: string): Promise<number> => page.evaluate<number>(`document.querySelector(${JSON.stringify(selector)}).naturalWidth`);
    await waitUntil(page, `document.querySelector('#output .result img[src^="data:image/png"]').complete`);
    assert.ok((await width('#output .result img[src^="data:image/png"]')) > 100, 'the figure decoded');
    const svgImg = '#output .result img[src^="data:image/svg+xml"]';
    await waitUntil(page, `document.querySelector('${svgImg}')?.complete === true`);
    assert.equal(await width(svgImg), 40, 'the SVG decoded as an image');
    assert.equal(await page.$$eval('#output svg', (n) => n.length), 0, 'SVG is never inlined');
    // Opened in a tab of its own ("open image in new tab"), the SVG is a document whose script
    // runs: it must not run as the server's origin (a blob: URL would), where it could call the API.
    const src = await page.getAttribute(svgImg, 'src');
    assert.ok(src);
    const tab = await page.context().newPage();
    try {
      await tab.goto(src);
      assert.equal(await tab.evaluate('self.origin'), 'null', 'the SVG document has an opaque origin');
    } finally {
      await tab.close();
    }
    assert.equal(await page.title(), 'Sluice playground');
    assert.equal(await page.textContent('#output .json-tree summary'), '{ 2 keys');
    assert.match((await page.textContent('#output .json-tree')) ?? '', /"deep": null/);
    await shot(page, '05-results');
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

/** A loopback origin in front of `target` that can cut the open event streams on demand. */
async function startCuttableFront(target: string): Promise<Listening & { cut(): number }> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const streams = new Set<ServerResponse>();
  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if ((answer.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        streams.add(res);
        res.on('close', () => streams.delete(res));
      }
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });
  front.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listening = await listenLoopback(front, sockets);
  return {
    ...listening,
    cut: () => {
      const n = streams.size;
      for (const res of streams) res.socket?.destroy();
      return n;
    },
  };
}

test('a stream cut mid-way shows the reconnect indicator and resumes with nothing lost', { skip: noBrowser, timeout: 90_000 }, async () => {
  const front = await startCuttableFront(server.url);
  const p = await open(front.url);
  const { page } = p;
  try {
    // The first resume attempt is refused too (route interception), so the SDK has to try again.
    let refused = 0;
    await page.route('**/api/executions/*/events', async (route) => {
      if (refused === 0) {
        refused++;
        await route.abort('connectionreset');
      } else {
        await route.continue();
      }
    });
    await page.evaluate(`(() => {
      const states = (window.linkStates = []);
      const el = document.getElementById('connection');
      new MutationObserver(() => states.push(el.dataset.state)).observe(el, { attributes: true, attributeFilter: ['data-state'] });
    })()`);
    await setCode(page, 'import time\nfor i in range(40):\n    print(f"n {i}", flush=True)\n    time.sleep(0.1)\n');
    await page.keyboard.press('Control+Enter');
    await waitForOutput(page, 'n 5');
    assert.equal(front.cut(), 1, 'one event stream was open, and is cut');
    await page.waitForSelector('#connection[data-state="dropped"], #connection[data-state="reconnecting"]', { timeout: 10_000 });
    await shot(page, '06-reconnecting');
    await page.waitForSelector('#connection[data-state="resumed"]', { timeout: 20_000 });
    await page.waitForSelector('body[data-run="idle"]', { timeout: 30_000 });
    assert.equal(refused, 1, 'the first resume went through the interception');
    const states = await page.evaluate<string[]>('window.linkStates');
    assert.deepEqual(states.filter((st, i) => st !== states[i - 1]), ['dropped', 'reconnecting', 'resumed'], 'the indicator told the drop, the retries and the resume');
    assert.match((await page.textContent('#connection')) ?? '', /Reconnected: resumed after event \d+/);
    assert.deepEqual(await outputLines(page), Array.from({ length: 40 }, (_, i) => `n ${i}`));
    assert.match((await page.textContent('#status')) ?? '', /Finished · exit code 0/);
    await shot(page, '07-resumed');
    // The browser reports the two breaks the test made (the cut body, the refused resume); nothing else.
    assert.deepEqual(p.problems.filter((m) => !/^console: Failed to load resource: net::ERR_(INCOMPLETE_CHUNKED_ENCODING|CONNECTION_RESET)/.test(m)), []);
  } finally {
    await p.close();
    await front.close();
  }
});

test('files: upload with the picker and by dropping, read them from code, download one, delete one', { skip: noBrowser, timeout: 60_000 }, async () => {
  const p = await open(server.url);
  const { page } = p;
  try {
    await page.setInputFiles('#upload', { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the picker\n') });
    await page.waitForSelector('#file-list li[data-name="hello.txt"]');
    const dropped = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped on the panel\\n'], 'dropped.txt', { type: 'text/plain' }));
      return dt;
    })()`);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
    await page.waitForSelector('#file-list li[data-name="dropped.txt"]');
    await shot(page, '08-files');

    await setCode(page, 'print(open("hello.txt").read(), end="")\nprint(open("dropped.txt").read(), end="")\nopen("made.csv", "w").write("a,b\\n1,2\\n")\n');
    assert.match(await runAndWait(page), /exit code 0/);
    assert.deepEqual(await outputLines(page), ['hello from the picker', 'dropped on the panel']);
    await page.waitForSelector('#file-list li[data-name="made.csv"]');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[aria-label="Download made.csv"]')]);
    assert.equal(download.suggestedFilename(), 'made.csv');
    const path = await download.path();
    assert.equal(readFileSync(path, 'utf8'), 'a,b\n1,2\n');
    await download.delete();

    await page.click('button[aria-label="Delete hello.txt"]');
    await page.waitForSelector('#file-list li[data-name="hello.txt"]', { state: 'detached' });
    assert.deepEqual(await page.$$eval('#file-list li', (l) => l.map((x) => x.getAttribute('data-name'))), ['dropped.txt', 'made.csv']);
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

test('the agent tab streams the answer token by token and each tool call as a card with its code and live output', { skip: noBrowser, timeout: 90_000 }, async () => {
  llm.push(
    toolCallReply('run_code', { code: 'import time\nprint("alpha", flush=True)\ntime.sleep(0.5)\nprint("beta")', language: 'python' }, { text: 'Let me check. ' }),
    { steps: [{ text: 'Both' }, { hold: 'tokens' }, { text: ' printed.' }, { finish: 'stop' }, { usage: { prompt: 20, completion: 5 } }] },
  );
  const p = await open(server.url);
  const { page } = p;
  try {
    await page.focus('#tab-code');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getAttribute('#tab-agent', 'aria-selected'), 'true');
    assert.equal(await page.isVisible('#panel-agent'), true);
    await page.focus('#prompt');
    await page.keyboard.type('Print alpha and beta');
    await page.keyboard.press('Control+Enter');
    await llm.reached('tokens');
    // Held mid-answer: the first token is on the page, the rest has not been sent.
    await waitUntil(page, `[...document.querySelectorAll('#chat .msg.assistant')].some((m) => m.textContent === 'Both')`);
    const card = await page.waitForSelector('#chat .tool-card[data-reason="exited"]');
    assert.match((await card.textContent()) ?? '', /run_code/);
    assert.equal(await card.$eval('.tool-code', (c) => c.textContent), 'import time\nprint("alpha", flush=True)\ntime.sleep(0.5)\nprint("beta")');
    assert.deepEqual(await card.$$eval('.output .line', (l) => l.map((x) => x.textContent)), ['alpha', 'beta']);
    await shot(page, '09-agent-streaming');
    llm.release('tokens');
    await page.waitForSelector('#chat [data-end="completed"]', { timeout: 20_000 });
    assert.deepEqual(await page.$$eval('#chat .msg.assistant', (m) => m.map((x) => x.textContent)), ['Let me check. ', 'Both printed.']);
    await shot(page, '10-agent-done');
    assertScriptUsed(llm);
    assert.deepEqual(p.problems, []);
  } finally {
    await p.close();
  }
});

test('a server with keys: the page asks for the key, keeps it in sessionStorage, and an HTML result cannot reach it or the page', { skip: noBrowser, timeout: 90_000 }, async () => {
  const p = await open(keyed.url, false);
  const { page } = p;
  try {
    await page.waitForSelector('#key-dialog[open]', { timeout: 20_000 });
    await shot(page, '11-key-prompt');
    await page.keyboard.type('not-the-key');
    await page.keyboard.press('Enter');
    await waitUntil(page, `document.getElementById('key-reason')?.textContent?.includes('refused')`);
    await page.keyboard.type(KEY);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('sluice.apiKey')"), KEY);

    const html = [
      '<p id="hello">hello from html</p>',
      '<script>',
      'try { parent.document.title = "pwned"; } catch (e) {}',
      'try { new Image().src = "/leak?k=" + parent.sessionStorage.getItem("sluice.apiKey"); } catch (e) {}',
      'try { new Image().src = "/leak?c=" + document.cookie; } catch (e) {}',
      'fetch("/leak-fetch").catch(() => {});',
      '</script>',
      '<img src="https://example.invalid/leak-img" onerror="parent.document.title = \'pwned\'">',
      '<form action="/leak-form" target="_top"><button id="go">go</button></form>',
    ].join('');
    await setCode(page, `class Page:\n    def _repr_html_(self):\n        return ${JSON.stringify(html)}\n\nfrom sluice import result\nresult(Page())\n`);
    assert.match(await runAndWait(page), /exit code 0/);
    const frameEl = await page.waitForSelector('#output .result iframe');
    assert.equal(await frameEl.getAttribute('sandbox'), '', 'sandboxed with no permission at all');
    const frame = await frameEl.contentFrame();
    assert.ok(frame);
    await frame.waitForSelector('#hello');
    assert.equal(await frame.textContent('#hello'), 'hello from html');
    // What a script inside could reach, tried from inside the frame (DevTools evaluates even where page scripts may not run).
    const reach = await frame.evaluate<Record<string, string>>(`(() => {
      const attempt = (f) => {
        try {
          return 'reached: ' + String(f());
        } catch (e) {
          return 'blocked: ' + e.name;
        }
      };
      return {
        origin: window.origin,
        parentDocument: attempt(() => window.parent.document.title),
        topDocument: attempt(() => window.top.document.body.textContent),
        parentStorage: attempt(() => window.parent.sessionStorage.getItem('sluice.apiKey')),
        ownStorage: attempt(() => sessionStorage.getItem('sluice.apiKey')),
        cookie: attempt(() => document.cookie),
      };
    })()`);
    assert.deepEqual(reach, {
      origin: 'null',
      parentDocument: 'blocked: SecurityError',
      topDocument: 'blocked: SecurityError',
      parentStorage: 'blocked: SecurityError',
      ownStorage: 'blocked: SecurityError',
      cookie: 'blocked: SecurityError',
    });
    await frame.click('#go', { timeout: 5_000, noWaitAfter: true }).catch(() => undefined);
    assert.equal(await page.title(), 'Sluice playground');
    assert.match(page.url(), new RegExp(`^${keyed.url}/$`));
    assert.deepEqual(p.requests.filter((u) => u.includes('/leak')), [], 'the result made no request');
    await shot(page, '12-html-result-sandboxed');
    assert.deepEqual(p.problems.filter((m) => !/status of 401/.test(m)), []);
  } finally {
    await p.close();
  }
});
