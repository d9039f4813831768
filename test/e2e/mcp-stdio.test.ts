/**
 * `sluice mcp` (docs/mcp.md): the SDK's StdioClientTransport spawns the built CLI, which
 * forwards to a real server's /mcp. Tools, live progress, state, cancellation and the end of
 * the session when stdin closes all go through the bridge.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LoggingMessageNotificationSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { hostProcesses, waitFor } from './helpers/host.js';
import { CLI, startServer, type TestServer } from './helpers/server.js';

const KEY = 'stdio-mcp-key-0123456789abcdef';

let server: TestServer;

before(async () => {
  server = await startServer({ SLUICE_API_KEYS: `desk:${KEY}` });
});
after(async () => {
  await server?.stop();
});

async function sessions(): Promise<string[]> {
  const res = await fetch(`${server.url}/api/sessions`, { headers: { Authorization: `Bearer ${KEY}` } });
  return ((await res.json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
}

function spawnBridge(args: string[], env: Record<string, string> = {}): { client: Client; transport: StdioClientTransport; stderr: () => string } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', ...args],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  return { client: new Client({ name: 'sluice-stdio-e2e', version: '1.0.0' }), transport, stderr: () => stderr };
}

test('sluice mcp: tools, live progress, state and cancellation through the stdio bridge; the session ends with stdin', async () => {
  const { client, transport, stderr } = spawnBridge(['--url', server.url], { SLUICE_API_KEY: KEY });
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
  await client.connect(transport);
  try {
    const session = /Sluice session (mcp-[0-9a-f]+)/.exec(client.getInstructions() ?? '')?.[1];
    assert.ok(session, client.getInstructions());
    assert.ok((await sessions()).includes(session));
    const { tools } = await client.listTools();
    assert.equal(tools.length, 6);

    // Live: the program waits for a file the test writes only after the first notification.
    let sawFirst!: () => void;
    const first = new Promise<void>((r) => (sawFirst = r));
    const progress: string[] = [];
    const call = client.callTool({ name: 'run_code', arguments: { code: 'import os, time\nx = 7\nprint("first", flush=True)\nwhile not os.path.exists("go"):\n    time.sleep(0.01)\nprint("second")' } }, undefined, {
      onprogress: (p) => {
        progress.push(p.message ?? '');
        if (p.message === 'first\n') sawFirst();
      },
    });
    await first;
    await client.callTool({ name: 'write_file', arguments: { path: 'go', content: '' } });
    const r = (await call) as CallToolResult;
    assert.equal(r.isError, undefined);
    assert.deepEqual(progress, ['first\n', 'second\n']);
    assert.deepEqual(logs, ['first\n', 'second\n']);
    const again = (await client.callTool({ name: 'run_code', arguments: { code: 'print(x * 6)' } })) as CallToolResult;
    assert.equal((again.structuredContent as { stdout: string }).stdout, '42\n');

    const bad = await client.callTool({ name: 'run_code', arguments: { code: 1 } }).then(() => null, (e: unknown) => e);
    assert.ok(bad instanceof McpError);
    assert.equal(bad.code, -32602);
    assert.match(bad.message, /run_code: code: expected a string/);

    // Cancellation travels through the bridge as notifications/cancelled.
    const marker = 'sleep 5151.5';
    const abort = new AbortController();
    const slow = client.callTool({ name: 'run_command', arguments: { command: marker } }, undefined, { signal: abort.signal });
    await waitFor('the sleep to run', 30_000, async () => ((await hostProcesses()).some((p) => p.args === marker) ? true : undefined));
    abort.abort();
    await assert.rejects(slow);
    await waitFor('the sleep to be gone', 15_000, async () => ((await hostProcesses()).some((p) => p.args === marker && !p.stat.startsWith('Z')) ? undefined : true));

    // Closing stdin ends the bridge, which deletes its session.
    const pid = transport.pid;
    assert.ok(pid !== null);
    await client.close();
    await waitFor('the session to be deleted', 15_000, async () => ((await sessions()).includes(session) ? undefined : true));
    await waitFor('the bridge to exit', 15_000, async () => ((await hostProcesses()).some((p) => p.pid === pid) ? undefined : true));
  } finally {
    await client.close();
  }
  assert.doesNotMatch(stderr(), /internal error/);
});

test('sluice mcp: a wrong key is answered as a JSON-RPC error (on stdout), with the reason on stderr', async () => {
  const { client, transport, stderr } = spawnBridge(['--url', server.url, '--api-key', 'wrong-key-0123456789abcdef']);
  await assert.rejects(client.connect(transport), /UNAUTHORIZED/);
  await client.close();
  assert.match(stderr(), /^sluice mcp: http:\/\/127\.0\.0\.1:\d+\/mcp: .*UNAUTHORIZED.*\n$/);
});
