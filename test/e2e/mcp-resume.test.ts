/**
 * MCP over /mcp (docs/mcp.md), the cases a review found broken: dotfiles, a half-open cut,
 * resumption while many other requests come, a finished stream's resume, idle expiry of a
 * connected client. The official SDK's client against a real server with real sandboxes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, McpError, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { waitFor } from './helpers/host.js';
import { listenLoopback, type Listening } from './helpers/net.js';
import { startServer, type TestServer } from './helpers/server.js';

const KEY = 'resume-mcp-key-0123456789abcdef';
const AUTH = { Authorization: `Bearer ${KEY}` };

let server: TestServer;

before(async () => {
  server = await startServer({ SLUICE_API_KEYS: `carol:${KEY}` });
});
after(async () => {
  await server?.stop();
});

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  sessionID: string;
  logs: { logger: string; data: string }[];
  close(): Promise<void>;
}

async function connectMcp(url: string): Promise<Connected> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: AUTH },
    reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 20 },
  });
  const client = new Client({ name: 'sluice-e2e', version: '1.0.0' });
  const logs: Connected['logs'] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push({ logger: n.params.logger ?? '', data: String(n.params.data) }));
  await client.connect(transport);
  const m = /Sluice session (mcp-[0-9a-f]+)/.exec(client.getInstructions() ?? '');
  assert.ok(m?.[1], client.getInstructions());
  return { client, transport, sessionID: m[1], logs, close: () => client.close() };
}

function textOf(r: CallToolResult): string {
  const first = r.content[0];
  return first?.type === 'text' ? first.text : '';
}

async function callTool(c: Connected, name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void): Promise<CallToolResult> {
  return (await c.client.callTool({ name, arguments: args }, undefined, { ...(onprogress ? { onprogress } : {}), timeout: 120_000 })) as CallToolResult;
}

/**
 * A loopback TCP proxy to `target`. `cut('both')` destroys every connection; `cut('client')`
 * destroys only the client's side and keeps the server's open and silent (a half-open
 * connection: the server believes the client is still there).
 */
async function proxyTo(target: string): Promise<Listening & { cut(how: 'both' | 'client'): void }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const pairs = new Set<{ down: Socket; up: Socket; keepUp: boolean }>();
  const proxy = createServer((down) => {
    const up = netConnect(Number(port), hostname);
    const pair = { down, up, keepUp: false };
    pairs.add(pair);
    sockets.add(down).add(up);
    down.pipe(up).pipe(down);
    const drop = (): void => {
      down.destroy();
      if (!pair.keepUp) up.destroy();
      pairs.delete(pair);
    };
    down.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  const listening = await listenLoopback(proxy, sockets);
  return {
    ...listening,
    cut(how) {
      for (const p of [...pairs]) {
        if (how === 'client') {
          p.keepUp = true;
          p.up.unpipe(p.down);
          p.up.pause();
        }
        p.down.destroy();
      }
    },
  };
}

const FORTY_LINES = 'import time\nfor i in range(1, 41):\n    print(f"line {i}", flush=True)\n    time.sleep(0.05)';
const FORTY = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`);

test('dotfiles keep their dot through read_file, write_file, list_files and resources; ".." is refused', async () => {
  const c = await connectMcp(`${server.url}/mcp`);
  try {
    const made = await callTool(c, 'run_command', { command: 'echo DOT > .env; echo PLAIN > env; mkdir .cfg; echo c > .cfg/x; echo secret > secret.txt' });
    assert.equal(made.isError, undefined, textOf(made));
    assert.equal(textOf(await callTool(c, 'read_file', { path: '.env' })), 'DOT\n');
    assert.equal(textOf(await callTool(c, 'read_file', { path: '/workspace/.env' })), 'DOT\n');
    const wrote = await callTool(c, 'write_file', { path: '.gitignore', content: 'node_modules\n' });
    assert.equal(wrote.isError, undefined, textOf(wrote));
    const ls = await callTool(c, 'run_command', { command: 'cat .gitignore; ls -A' });
    assert.match((ls.structuredContent as { stdout: string }).stdout, /^node_modules\n(.*\n)*\.gitignore\n/);
    assert.match(textOf(await callTool(c, 'list_files', { dir: '.cfg' })), /^\.cfg\/x\tfile\t2$/);
    const root = textOf(await callTool(c, 'list_files', {}));
    assert.match(root, /^\.env\tfile\t4$/m);
    assert.match(root, /^\.cfg\/\tdirectory\t/m);

    const { resources } = await c.client.listResources();
    assert.ok(resources.some((r) => r.uri === 'file:///workspace/.env'), resources.map((r) => r.uri).join(' '));
    assert.ok(resources.some((r) => r.uri === 'file:///workspace/.cfg/x'));
    const env = await c.client.readResource({ uri: 'file:///workspace/.env' });
    assert.deepEqual([env.contents[0]?.uri, (env.contents[0] as { text?: string } | undefined)?.text], ['file:///workspace/.env', 'DOT\n']);

    // ".." would leave the workspace: refused, never rewritten to a path inside it.
    const up = await callTool(c, 'read_file', { path: '../secret.txt' });
    assert.equal(up.isError, true);
    assert.match(textOf(up), /"\.\." would leave the workspace/);
    const upRes = await c.client.readResource({ uri: 'file:///workspace/../secret.txt' }).then(() => null, (e: unknown) => e);
    assert.ok(upRes instanceof McpError);
    assert.equal(upRes.code, -32602);
  } finally {
    await c.close();
  }
});

test('a half-open cut (the client gone, the server not told) is resumed: every line once, then the result', async () => {
  const proxy = await proxyTo(server.url);
  const c = await connectMcp(`${proxy.url}/mcp`);
  const errors: string[] = [];
  c.transport.onerror = (e) => void errors.push(e.message);
  try {
    const lines: string[] = [];
    let cut = false;
    const r = await callTool(c, 'run_code', { code: FORTY_LINES }, (p) => {
      lines.push(...(p.message ?? '').split('\n').filter((l) => l !== ''));
      if (!cut && lines.length >= 5) {
        cut = true;
        proxy.cut('client');
      }
    });
    assert.ok(cut);
    assert.deepEqual(lines, FORTY);
    assert.equal((r.structuredContent as { reason: string }).reason, 'exited');
    assert.ok(!errors.some((e) => /409|Conflict/.test(e)), errors.join('\n'));
  } finally {
    await c.close();
    await proxy.close();
  }
});

test('a resume after 40 other requests opened streams gets every line (or says what it lost), never silently less', async () => {
  const proxy = await proxyTo(server.url);
  const c = await connectMcp(`${proxy.url}/mcp`);
  try {
    const lines: string[] = [];
    let cut = false;
    const others: Promise<unknown>[] = [];
    const r = await callTool(c, 'run_code', { code: FORTY_LINES }, (p) => {
      lines.push(...(p.message ?? '').split('\n').filter((l) => l !== ''));
      if (!cut && lines.length >= 10) {
        cut = true;
        proxy.cut('both');
        // Other requests of the session while the run's stream is being resumed: each opens (and finishes) a stream.
        // (One that went out on a pooled connection the cut just closed is sent again.)
        for (let i = 0; i < 40; i++) others.push(c.client.listTools().catch(() => c.client.listTools()));
      }
    });
    await Promise.all(others);
    assert.ok(cut);
    assert.equal((r.structuredContent as { reason: string }).reason, 'exited');
    const gaps = c.logs.filter((l) => l.logger === 'sluice');
    const missing = FORTY.filter((l) => !lines.includes(l));
    assert.ok(missing.length === 0 || gaps.length > 0, `lost without notice: ${missing.join(', ')}`);
    // The run's stream is still running while the others finish: it is never the one dropped.
    assert.deepEqual(lines, FORTY);
    assert.deepEqual(gaps, []);
  } finally {
    await c.close();
    await proxy.close();
  }
});

/** Reads an SSE body to its end (or throws at the deadline): the events' ids and data. */
async function readSSE(res: Response, ms: number): Promise<{ id: string; data: string }[]> {
  const body = res.body;
  assert.ok(body);
  const reader = body.getReader();
  const timer = setTimeout(() => void reader.cancel(new Error('deadline')), ms);
  let text = '';
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      text += Buffer.from(value).toString('utf8');
    }
  } catch {
    // cancelled at the deadline
  } finally {
    clearTimeout(timer);
  }
  assert.ok(ended, `the stream ended within ${ms} ms; got:\n${text}`);
  return text
    .split('\n\n')
    .filter((e) => e.trim() !== '')
    .map((e) => ({ id: /^id: (.*)$/m.exec(e)?.[1] ?? '', data: /^data: ?(.*)$/m.exec(e)?.[1] ?? '' }));
}

test('resuming a stream whose result was already sent replays the rest and ends; an unknown event id is 400', async () => {
  const headers = { ...AUTH, Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };
  const init = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
  const session = init.headers.get('mcp-session-id');
  assert.ok(session);
  await readSSE(init, 30_000);
  const h = { ...headers, 'Mcp-Session-Id': session, 'Mcp-Protocol-Version': '2025-11-25' };
  try {
    assert.equal((await fetch(`${server.url}/mcp`, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).status, 202);
    const call = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_code', arguments: { code: 'print("a")\nprint("b")' } } }),
    });
    const events = await readSSE(call, 60_000);
    const prime = events[0];
    const result = events[events.length - 1];
    assert.ok(prime && result && prime.data === '', JSON.stringify(events));
    assert.match(result.data, /"id":2/);

    const resumed = await fetch(`${server.url}/mcp`, { headers: { ...AUTH, Accept: 'text/event-stream', 'Mcp-Session-Id': session, 'Last-Event-ID': prime.id } });
    assert.equal(resumed.status, 200);
    // It ends by itself once the result is replayed (a curl resume returns).
    const replayed = await readSSE(resumed, 15_000);
    assert.deepEqual(replayed, events.slice(1));

    const unknown = await fetch(`${server.url}/mcp`, { headers: { ...AUTH, Accept: 'text/event-stream', 'Mcp-Session-Id': session, 'Last-Event-ID': 'nosuchstream:3' } });
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /names no stream of this session/);
  } finally {
    await fetch(`${server.url}/mcp`, { method: 'DELETE', headers: h });
  }
});

test('idle expiry ends an MCP session nobody holds, never one whose client keeps a stream open', async () => {
  const small = await startServer({ SLUICE_API_KEYS: `carol:${KEY}`, SLUICE_IDLE_TTL: '1' });
  try {
    const sessions = async (): Promise<string[]> =>
      ((await (await fetch(`${small.url}/api/sessions`, { headers: AUTH })).json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    // The SDK's client holds the GET stream open while connected.
    const held = await connectMcp(`${small.url}/mcp`);
    try {
      await waitFor('the GET stream to open', 15_000, async () => (held.transport.sessionId !== undefined ? true : undefined));
      // A session whose client only sent initialize (no stream open), active later than `held`.
      const init = await fetch(`${small.url}/mcp`, {
        method: 'POST',
        headers: { ...AUTH, Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
      });
      const text = await init.text();
      const idle = /Sluice session (mcp-[0-9a-f]+)/.exec(text)?.[1];
      assert.ok(idle, text);
      await waitFor('the idle session to expire', 30_000, async () => ((await sessions()).includes(idle) ? undefined : true));
      assert.ok((await sessions()).includes(held.sessionID), 'the connected client\'s session is still there');
      const r = await callTool(held, 'run_code', { code: 'print("alive")' });
      assert.equal((r.structuredContent as { stdout: string }).stdout, 'alive\n');
    } finally {
      await held.close();
    }
  } finally {
    await small.stop();
  }
});
