/**
 * MCP over Streamable HTTP at /mcp (docs/mcp.md), driven by the official SDK's client against a
 * real server with real sandboxes: tools, live notifications, kernel state, rich results,
 * errors, cancellation, a cut connection resumed with nothing lost, tenants, resources.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, McpError, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { hostProcesses, waitFor } from './helpers/host.js';
import { listenLoopback, pairConnections, type Listening } from './helpers/net.js';
import { startServer, type TestServer } from './helpers/server.js';

const ALICE = 'alice-mcp-key-0123456789abcdef';
const BOB = 'bob-mcp-key-0123456789abcdef00';

let server: TestServer;

before(async () => {
  server = await startServer({ SLUICE_API_KEYS: `alice:${ALICE},bob:${BOB}` });
});
after(async () => {
  await server?.stop();
});

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** The Sluice session behind the MCP session (named in the initialize instructions). */
  sessionID: string;
  /** Log messages as they arrived. */
  logs: { logger: string; data: string; at: number }[];
  close(): Promise<void>;
}

async function connectMcp(key: string, url = `${server.url}/mcp`): Promise<Connected> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
    reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 20 },
  });
  const client = new Client({ name: 'sluice-e2e', version: '1.0.0' });
  const logs: Connected['logs'] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push({ logger: n.params.logger ?? '', data: String(n.params.data), at: Date.now() });
  });
  await client.connect(transport);
  const m = /Sluice session (mcp-[0-9a-f]+)/.exec(client.getInstructions() ?? '');
  assert.ok(m?.[1], `the instructions name the session: ${client.getInstructions()}`);
  return { client, transport, sessionID: m[1], logs, close: () => client.close() };
}

function textOf(r: CallToolResult): string {
  const first = r.content[0];
  return first?.type === 'text' ? first.text : '';
}

async function callTool(c: Connected, name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void, signal?: AbortSignal): Promise<CallToolResult> {
  return (await c.client.callTool({ name, arguments: args }, undefined, { ...(onprogress ? { onprogress } : {}), ...(signal ? { signal } : {}), timeout: 120_000 })) as CallToolResult;
}

async function api(path: string, key: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, { ...init, headers: { Authorization: `Bearer ${key}`, ...(init.headers as Record<string, string> | undefined) } });
}

test('tools/list names the six tools with their schemas; run tools declare an outputSchema', async () => {
  const c = await connectMcp(ALICE);
  try {
    const { tools } = await c.client.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['run_code', 'run_command', 'read_file', 'write_file', 'list_files', 'restart']);
    const run = tools.find((t) => t.name === 'run_code');
    assert.deepEqual(run?.inputSchema.required, ['code']);
    assert.ok(run?.inputSchema.properties?.['timeout']);
    assert.deepEqual(run?.outputSchema?.required, ['exit_code', 'reason', 'stdout', 'stderr', 'execution_id', 'duration_ms']);
    // The session is an ordinary Sluice session of this tenant.
    assert.equal((await api(`/api/sessions/${c.sessionID}`, ALICE)).status, 200);
  } finally {
    await c.close();
  }
});

test('run_code: output arrives as progress and log notifications while the program still runs, then the result', async (t: TestContext) => {
  const c = await connectMcp(ALICE);
  try {
    const progress: { p: Progress; at: number }[] = [];
    let firstAt = 0;
    let wroteGoAt = 0;
    let sawFirst!: () => void;
    const first = new Promise<void>((r) => (sawFirst = r));
    const code = [
      'import os, time',
      'from sluice import progress',
      'print("first", flush=True)',
      // Waits for a file the test writes only once the first notification has arrived.
      'while not os.path.exists("/workspace/go"):',
      '    time.sleep(0.01)',
      'progress(50, "half")',
      'print("second", flush=True)',
    ].join('\n');
    const call = callTool(c, 'run_code', { code }, (p) => {
      progress.push({ p, at: Date.now() });
      if (p.message === 'first\n' && firstAt === 0) {
        firstAt = Date.now();
        sawFirst();
      }
    });
    await first;
    // The program is still waiting: the result cannot have come.
    const go = await callTool(c, 'write_file', { path: 'go', content: '' });
    wroteGoAt = Date.now();
    assert.equal(go.isError, undefined, textOf(go));
    const r = await call;
    const doneAt = Date.now();
    assert.equal(r.isError, undefined, textOf(r));
    assert.match(textOf(r), /^exit_code: 0 \(exited\)\nstdout:\nfirst\nsecond\n/);
    assert.ok(firstAt < wroteGoAt && wroteGoAt <= doneAt, 'the first line arrived before the program could end');
    // progress = the event's seq: strictly increasing; the code's progress(50) keeps progress/total = 0.5.
    const seqs = progress.map((x) => x.p.progress);
    assert.deepEqual([...seqs].sort((a, b) => a - b), seqs);
    assert.equal(new Set(seqs).size, seqs.length);
    const half = progress.find((x) => x.p.message === 'half');
    assert.ok(half?.p.total !== undefined, 'a progress event gives a total');
    assert.equal(half.p.progress / half.p.total, 0.5);
    assert.deepEqual(progress.map((x) => x.p.message), ['first\n', 'half', 'second\n']);
    // And the same output as log messages, stdout as logger.
    assert.deepEqual(c.logs.filter((l) => l.logger === 'stdout').map((l) => l.data), ['first\n', 'second\n']);
    const s = r.structuredContent as { exit_code: number; reason: string; stdout: string; execution_id: string };
    assert.deepEqual([s.exit_code, s.reason, s.stdout], [0, 'exited', 'first\nsecond\n']);
    // An ordinary execution, visible to its tenant only.
    assert.equal((await api(`/api/executions/${s.execution_id}`, ALICE)).status, 200);
    assert.equal((await api(`/api/executions/${s.execution_id}`, BOB)).status, 404);
    t.diagnostic(`the go file was written ${wroteGoAt - firstAt} ms after the first notification; the result came ${doneAt - wroteGoAt} ms later`);
  } finally {
    await c.close();
  }
});

test('latency: a print in the sandbox reaches the MCP client as a notification within a bound', async (t: TestContext) => {
  const c = await connectMcp(ALICE);
  try {
    const lat: number[] = [];
    const code = 'import time\nfor i in range(40):\n    print(f"{time.time() * 1000:.3f}", flush=True)\n    time.sleep(0.02)';
    const r = await callTool(c, 'run_code', { code }, (p) => {
      const now = Date.now();
      for (const line of (p.message ?? '').split('\n')) if (line !== '') lat.push(now - Number(line));
    });
    assert.equal(r.isError, undefined, textOf(r));
    assert.equal(lat.length, 40);
    lat.sort((a, b) => a - b);
    const median = lat[Math.floor(lat.length / 2)] ?? NaN;
    t.diagnostic(`print → MCP progress notification: median ${median.toFixed(1)} ms, max ${(lat[lat.length - 1] ?? NaN).toFixed(1)} ms over ${lat.length} lines`);
    // Generous (a loaded 2-core machine): live means well under a second, not at the end.
    assert.ok(median < 500, `median latency ${median} ms`);
  } finally {
    await c.close();
  }
});

test('state persists between run_code calls; restart clears it', async () => {
  const c = await connectMcp(ALICE);
  try {
    assert.equal((await callTool(c, 'run_code', { code: 'x = 41' })).isError, undefined);
    const r = await callTool(c, 'run_code', { code: 'print(x + 1)' });
    assert.equal((r.structuredContent as { stdout: string }).stdout, '42\n');
    const restarted = await callTool(c, 'restart', {});
    assert.match(textOf(restarted), /restarted: python/);
    const gone = await callTool(c, 'run_code', { code: 'print(x)' });
    assert.equal(gone.isError, true);
    assert.match(textOf(gone), /NameError/);
  } finally {
    await c.close();
  }
});

test('rich results: a PNG is image content, HTML an embedded resource', async () => {
  const c = await connectMcp(ALICE);
  try {
    // A 1×1 PNG made by hand (no imaging library needed).
    const code = [
      'import struct, zlib',
      'from sluice import png, html, result',
      'def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)',
      'data = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\\x00\\xff\\x00\\x00")) + chunk(b"IEND", b"")',
      'result(png(data))',
      'result(html("<b>hi</b>"))',
    ].join('\n');
    const r = await callTool(c, 'run_code', { code });
    assert.equal(r.isError, undefined, textOf(r));
    const image = r.content.find((x) => x.type === 'image');
    assert.ok(image?.type === 'image');
    assert.equal(image.mimeType, 'image/png');
    assert.deepEqual([...Buffer.from(image.data, 'base64').subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const page = r.content.find((x) => x.type === 'resource');
    assert.ok(page?.type === 'resource');
    assert.equal(page.resource.mimeType, 'text/html');
    assert.equal('text' in page.resource ? page.resource.text : '', '<b>hi</b>');
  } finally {
    await c.close();
  }
});

test('a non-zero exit, a timeout and a refused file are results with isError, not protocol errors', async () => {
  const c = await connectMcp(ALICE);
  try {
    const failed = await callTool(c, 'run_command', { command: 'echo out; echo err >&2; exit 3' });
    assert.equal(failed.isError, true);
    assert.equal(textOf(failed), 'exit_code: 3 (exited)\nstdout:\nout\n\nstderr:\nerr\n');
    assert.deepEqual((failed.structuredContent as { exit_code: number }).exit_code, 3);
    const slow = await callTool(c, 'run_command', { command: 'sleep 30', timeout: 0.5 });
    assert.equal(slow.isError, true);
    assert.equal((slow.structuredContent as { reason: string }).reason, 'timeout');
    const missing = await callTool(c, 'read_file', { path: 'nope.txt' });
    assert.equal(missing.isError, true);
    assert.match(textOf(missing), /does not exist/);
    const escape = await callTool(c, 'read_file', { path: '../../etc/passwd' });
    assert.equal(escape.isError, true);
  } finally {
    await c.close();
  }
});

test('bad arguments are JSON-RPC InvalidParams errors whose message names the field', async () => {
  const c = await connectMcp(ALICE);
  try {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['run_code', { code: 5 }, /run_code: code: expected a string, got 5/],
      ['run_code', {}, /run_code: code: expected a string \(it is required\)/],
      ['run_code', { code: '1', timeout: -1 }, /run_code: timeout: expected a number > 0/],
      ['run_code', { code: '1', langauge: 'python' }, /run_code: langauge: unknown field/],
      ['run_code', { code: '1', language: 'cobol' }, /run_code: language: expected one of/],
      ['write_file', { path: 'a' }, /write_file: content: expected a string/],
      ['no_such_tool', {}, /unknown tool "no_such_tool"/],
    ];
    for (const [name, args, message] of cases) {
      const err = await callTool(c, name, args).then(
        () => assert.fail(`${name} ${JSON.stringify(args)} was accepted`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32602, err.message);
      assert.match(err.message, message);
    }
  } finally {
    await c.close();
  }
});

test('cancellation (notifications/cancelled) kills the run\'s process tree', async () => {
  const c = await connectMcp(ALICE);
  try {
    const marker = 'sleep 4242.25';
    const abort = new AbortController();
    const call = callTool(c, 'run_command', { command: `${marker} & ${marker} & wait` }, undefined, abort.signal);
    await waitFor('the sleeps to run', 30_000, async () => ((await hostProcesses()).filter((p) => p.args === marker).length === 2 ? true : undefined));
    abort.abort();
    await assert.rejects(call);
    await waitFor('the sleeps to be gone', 15_000, async () => ((await hostProcesses()).some((p) => p.args === marker && !p.stat.startsWith('Z')) ? undefined : true));
    // The session goes on.
    const next = await callTool(c, 'run_code', { code: 'print("still here")' });
    assert.equal((next.structuredContent as { stdout: string }).stdout, 'still here\n');
  } finally {
    await c.close();
  }
});

/** A loopback TCP proxy whose connections the test can cut; it records each request's head. */
async function cuttableProxy(target: string): Promise<Listening & { cut(): void; heads: string[] }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const heads: string[] = [];
  const proxy = createServer((down) => {
    const up = netConnect(Number(port), hostname);
    pairConnections(down, up, sockets);
    let head = '';
    down.on('data', (b: Buffer) => {
      if (head.length < 4096) {
        head += b.toString('latin1');
        if (head.includes('\r\n\r\n')) heads.push(head.slice(0, head.indexOf('\r\n\r\n')));
      }
    });
    down.pipe(up).pipe(down);
  });
  const listening = await listenLoopback(proxy, sockets);
  return {
    ...listening,
    heads,
    cut() {
      for (const s of sockets) s.destroy();
    },
  };
}

test('a connection cut mid-run is resumed with Last-Event-ID: every line exactly once, in order, then the result', async () => {
  const proxy = await cuttableProxy(server.url);
  const c = await connectMcp(ALICE, `${proxy.url}/mcp`);
  try {
    const lines: string[] = [];
    let cutDone = false;
    let afterCut = 0;
    const code = 'import time\nfor i in range(1, 61):\n    print(f"line {i}", flush=True)\n    time.sleep(0.03)';
    const r = await callTool(c, 'run_code', { code }, (p) => {
      if (cutDone) afterCut++;
      lines.push(...(p.message ?? '').split('\n').filter((l) => l !== ''));
      // Cut every connection (the POST's stream and the GET stream) once some lines have come.
      if (!cutDone && lines.length >= 5) {
        cutDone = true;
        proxy.cut();
      }
    });
    assert.ok(cutDone, 'the connection was cut mid-run');
    assert.ok(afterCut > 0, 'notifications came after the cut');
    assert.deepEqual(lines, Array.from({ length: 60 }, (_, i) => `line ${i + 1}`));
    const s = r.structuredContent as { exit_code: number; reason: string; stdout: string };
    assert.deepEqual([s.exit_code, s.reason], [0, 'exited'], 'the cut did not cancel the run');
    assert.equal(s.stdout.split('\n').length, 61);
    assert.ok(
      proxy.heads.some((h) => /^GET \/mcp /.test(h) && /\r\nlast-event-id: [0-9a-f-]+:\d+/i.test(h)),
      `a GET resumed the stream with Last-Event-ID:\n${proxy.heads.map((h) => h.split('\r\n')[0]).join('\n')}`,
    );
    // And the log messages, too: each line once.
    const logged = c.logs.filter((l) => l.logger === 'stdout').map((l) => l.data).join('');
    assert.equal(logged, s.stdout);
  } finally {
    await c.close();
    await proxy.close();
  }
});

test('tenants: each key sees only its own MCP sessions; no key is 401; a foreign session id is 404', async () => {
  const alice = await connectMcp(ALICE);
  const bob = await connectMcp(BOB);
  try {
    assert.notEqual(alice.sessionID, bob.sessionID);
    const ids = async (key: string): Promise<string[]> => ((await (await api('/api/sessions', key)).json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    assert.ok((await ids(ALICE)).includes(alice.sessionID));
    assert.ok(!(await ids(ALICE)).includes(bob.sessionID));
    assert.ok(!(await ids(BOB)).includes(alice.sessionID));
    await callTool(alice, 'write_file', { path: 'secret.txt', content: 'alice only' });
    const bobsRead = await callTool(bob, 'read_file', { path: 'secret.txt' });
    assert.equal(bobsRead.isError, true, 'another tenant\'s workspace is another workspace');

    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': alice.transport.sessionId ?? '' };
    const foreign = await fetch(`${server.url}/mcp`, { method: 'POST', body, headers: { ...headers, Authorization: `Bearer ${BOB}` } });
    assert.equal(foreign.status, 404);
    assert.deepEqual(await foreign.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
    const anonymous = await fetch(`${server.url}/mcp`, { method: 'POST', body, headers });
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const noSession = await fetch(`${server.url}/mcp`, { method: 'POST', body, headers: { ...headers, 'Mcp-Session-Id': '', Authorization: `Bearer ${ALICE}` } });
    assert.equal(noSession.status, 404);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('Origin: another site is refused 403; the server\'s own origin is served', async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'o', version: '1' } } };
  const post = (origin: string): Promise<Response> =>
    fetch(`${server.url}/mcp`, {
      method: 'POST',
      body: JSON.stringify(init),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${ALICE}`, Origin: origin },
    });
  const evil = await post('http://evil.example');
  assert.equal(evil.status, 403);
  assert.equal(((await evil.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
  const own = await post(server.url);
  assert.equal(own.status, 200);
  const id = own.headers.get('mcp-session-id');
  await own.body?.cancel();
  assert.ok(id);
  const del = await fetch(`${server.url}/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${ALICE}`, 'Mcp-Session-Id': id } });
  assert.equal(del.status, 200);
});

test('resources: the workspace files, listed and read (text and binary); DELETE /mcp deletes the session', async () => {
  const c = await connectMcp(ALICE);
  try {
    await callTool(c, 'run_code', { code: 'import os\nos.makedirs("out", exist_ok=True)\nopen("out/data.csv", "w").write("a,b\\n1,2\\n")\nopen("blob.bin", "wb").write(bytes(range(256)))' });
    const { resources } = await c.client.listResources();
    const byURI = new Map(resources.map((r) => [r.uri, r]));
    assert.equal(byURI.get('file:///workspace/out/data.csv')?.mimeType, 'text/csv');
    assert.equal(byURI.get('file:///workspace/blob.bin')?.size, 256);
    const csv = await c.client.readResource({ uri: 'file:///workspace/out/data.csv' });
    assert.equal('text' in csv.contents[0]! ? csv.contents[0].text : '', 'a,b\n1,2\n');
    const bin = await c.client.readResource({ uri: 'file:///workspace/blob.bin' });
    assert.deepEqual(Buffer.from('blob' in bin.contents[0]! ? bin.contents[0].blob : '', 'base64'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    await assert.rejects(c.client.readResource({ uri: 'file:///workspace/../../etc/passwd' }), McpError);
    const { resourceTemplates } = await c.client.listResourceTemplates();
    assert.equal(resourceTemplates[0]?.uriTemplate, 'file:///workspace/{path}');
    await c.transport.terminateSession();
    await waitFor('the session to be deleted', 10_000, async () => ((await api(`/api/sessions/${c.sessionID}`, ALICE)).status === 404 ? true : undefined));
  } finally {
    await c.close();
  }
});

test('MCP sessions count against the tenant\'s session cap, and end when their Sluice session expires idle', async () => {
  const small = await startServer({ SLUICE_API_KEYS: `alice:${ALICE}`, SLUICE_MAX_SESSIONS_PER_TENANT: '1', SLUICE_IDLE_TTL: '1' });
  try {
    const url = `${small.url}/mcp`;
    const c = await connectMcp(ALICE, url);
    const second = await connectMcp(ALICE, url).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(second instanceof Error);
    assert.match(second.message, /RATE_LIMITED|SLUICE_MAX_SESSIONS_PER_TENANT/);
    // An open stream keeps the session (mcp-resume.test.ts): the client goes away without DELETE.
    const sessionID = c.transport.sessionId ?? '';
    await c.transport.close();
    // Idle for its TTL: the Sluice session expires (looking at it is no activity), and the MCP session with it.
    await waitFor('the session to expire', 15_000, async () => {
      const res = await fetch(`${small.url}/api/sessions/${c.sessionID}`, { headers: { Authorization: `Bearer ${ALICE}` } });
      return res.status === 404 ? true : undefined;
    });
    const res = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${ALICE}`, 'Mcp-Session-Id': sessionID },
    });
    assert.equal(res.status, 404);
    await res.body?.cancel();
    await c.close();
    // Its slot is free again.
    const again = await connectMcp(ALICE, url);
    await again.close();
  } finally {
    await small.stop();
  }
});
