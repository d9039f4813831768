/**
 * `sluice mcp` (docs/mcp.md) when its session goes away (the Sluice session deleted, the server
 * restarted: it starts a new one) and when stdin closes with requests still running (it
 * answers them before it ends).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LoggingMessageNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { waitFor } from './helpers/host.js';
import { listenLoopback, pairConnections } from './helpers/net.js';
import { CLI, startServer, type TestServer } from './helpers/server.js';

const KEY = 'stdio-renew-key-0123456789abcdef';
const KEYS = `desk:${KEY}`;

let server: TestServer;

before(async () => {
  server = await startServer({ SLUICE_API_KEYS: KEYS });
});
after(async () => {
  await server?.stop();
});

async function sessions(url: string): Promise<string[]> {
  const res = await fetch(`${url}/api/sessions`, { headers: { Authorization: `Bearer ${KEY}` } });
  return ((await res.json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
}

function stdoutOf(r: CallToolResult): string {
  return (r.structuredContent as { stdout: string }).stdout;
}

/** A loopback TCP proxy whose target can change (a server restarted on another port). */
async function switchableProxy(target: string): Promise<{ url: string; target: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { target };
  const proxy = createServer((down) => {
    const { hostname, port } = new URL(state.target);
    const up = netConnect(Number(port), hostname);
    pairConnections(down, up, sockets);
    down.pipe(up).pipe(down);
  });
  const listening = await listenLoopback(proxy, sockets);
  return Object.assign(state, { url: listening.url, close: listening.close });
}

test('sluice mcp starts a new session when the server no longer knows its own (deleted, server restarted)', async () => {
  const proxy = await switchableProxy(server.url);
  let second: TestServer | undefined;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', '--url', proxy.url],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_API_KEY: KEY },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const client = new Client({ name: 'sluice-stdio-e2e', version: '1.0.0' });
  const warnings: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    if (n.params.logger === 'sluice') warnings.push(String(n.params.data));
  });
  await client.connect(transport);
  try {
    await client.setLoggingLevel('info');
    const first = /Sluice session (mcp-[0-9a-f]+)/.exec(client.getInstructions() ?? '')?.[1];
    assert.ok(first);
    assert.equal(stdoutOf((await client.callTool({ name: 'run_code', arguments: { code: 'x = 1\nprint(x)' } })) as CallToolResult), '1\n');

    // The Sluice session is deleted through the API: its MCP session ends with it (404).
    assert.equal((await fetch(`${server.url}/api/sessions/${first}`, { method: 'DELETE', headers: { Authorization: `Bearer ${KEY}` } })).status, 204);
    const r = (await client.callTool({ name: 'run_code', arguments: { code: 'print("x" in globals())' } })) as CallToolResult;
    assert.equal(r.isError, undefined, JSON.stringify(r));
    assert.equal(stdoutOf(r), 'False\n', 'a new session, without the old variables');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /a new one started \(Sluice session mcp-[0-9a-f]+\): variables, imports and files of the old one are gone/);
    const renewed = (await sessions(server.url)).filter((s) => s.startsWith('mcp-'));
    assert.equal(renewed.length, 1);
    assert.notEqual(renewed[0], first);

    // The server restarts (a new process knowing nothing of the session).
    second = await startServer({ SLUICE_API_KEYS: KEYS });
    proxy.target = second.url;
    await server.stop();
    const again = (await client.callTool({ name: 'run_command', arguments: { command: 'echo back' } })) as CallToolResult;
    assert.equal(stdoutOf(again), 'back\n');
    assert.equal(warnings.length, 2);
    assert.equal((await sessions(second.url)).filter((s) => s.startsWith('mcp-')).length, 1);
    // And stdout stayed JSON-RPC only: the client parsed every line.
    assert.match(stderr, /no longer knows session [0-9a-f]+ .*starting a new one/);
  } finally {
    await client.close();
    await proxy.close();
    // The test's server is the one `after` stops: keep it the live one.
    if (second) server = second;
  }
});

test('closing stdin right after initialize: the bridge writes its answer, then deletes the session and exits', async () => {
  const bridge = spawn(process.execPath, [CLI, 'mcp', '--url', server.url], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_API_KEY: KEY },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  bridge.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  bridge.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
  bridge.stdin.on('error', () => {});
  const exited = new Promise<number | null>((r) => bridge.once('exit', r));
  const before = await sessions(server.url);
  // As `printf '…' | sluice mcp` does: everything at once, then end of input.
  const lines = [
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'pipe', version: '1' } } },
  ];
  bridge.stdin.end(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  assert.equal(await exited, 0, err);
  const answers = out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id?: number; result?: { instructions?: string }; error?: unknown });
  const init = answers.find((a) => a.id === 1);
  assert.ok(init?.result, `the initialize answer on stdout:\n${out}\nstderr:\n${err}`);
  assert.doesNotMatch(err, /aborted/);
  const session = /Sluice session (mcp-[0-9a-f]+)/.exec(init.result.instructions ?? '')?.[1];
  assert.ok(session);
  // The session it made is gone again.
  await waitFor('the session to be deleted', 15_000, async () => ((await sessions(server.url)).includes(session) ? undefined : true));
  assert.deepEqual((await sessions(server.url)).filter((s) => !before.includes(s)), []);
});

test('closing stdin right after a tools/call: its result is still written before the bridge exits', async () => {
  const bridge = spawn(process.execPath, [CLI, 'mcp', '--url', server.url], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_API_KEY: KEY },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  bridge.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  bridge.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
  bridge.stdin.on('error', () => {});
  const exited = new Promise<number | null>((r) => bridge.once('exit', r));
  const send = (m: unknown): void => void bridge.stdin.write(JSON.stringify(m) + '\n');
  send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'pipe', version: '1' } } });
  // The client's next messages wait for the initialize answer, as a client's do.
  await waitFor('the initialize answer', 30_000, async () => (out.includes('"id":1') ? true : undefined));
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_code', arguments: { code: 'import time\ntime.sleep(1)\nprint("done")' } } });
  bridge.stdin.end();
  assert.equal(await exited, 0, err);
  const call = out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id?: number; result?: { structuredContent?: { stdout: string } } })
    .find((a) => a.id === 2);
  assert.equal(call?.result?.structuredContent?.stdout, 'done\n', `stdout:\n${out}\nstderr:\n${err}`);
  assert.doesNotMatch(err, /aborted/);
});
