#!/usr/bin/env node
// MCP latency benchmark: `node bench/mcp.mjs` after a build (also run by `npm run bench`).
//
// Starts a real server, connects the official MCP SDK's client over Streamable HTTP (/mcp) and
// calls `run_code` with a program that prints BENCH_MCP_LINES lines, each holding its own
// wall-clock time (time.time_ns()), BENCH_MCP_GAP_MS apart. For each line: the arrival of its
// progress notification at the client (the clock of common.mjs) minus the time it was printed.
// Prints the median and p99 over all lines, and the same for log messages.
//
// The server is stopped (and its data dir removed) on every exit path.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { calibrateClock, fmtMs, intEnv, median, pct, recordFigure, startServer, table, wallNow } from './common.mjs';

/** Sizes, overridable: BENCH_MCP_LINES, BENCH_MCP_GAP_MS. */
const LINES = intEnv('BENCH_MCP_LINES', 200);
const GAP_MS = intEnv('BENCH_MCP_GAP_MS', 5);

let server = null;
const stop = async () => {
  await server?.stop();
};
process.once('SIGINT', () => void stop().then(() => process.exit(130)));

try {
  calibrateClock();
  server = await startServer({ tag: 'bench-mcp' });
  const client = new Client({ name: 'sluice-bench', version: '1.0.0' });
  const logLatency = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    const now = wallNow();
    for (const line of String(n.params.data).split('\n')) if (line !== '') logLatency.push(now - Number(line));
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  // A first call starts the kernel, so the measured one is a warm cell.
  await client.callTool({ name: 'run_code', arguments: { code: 'import time' } });
  logLatency.length = 0;

  const progressLatency = [];
  // Anchored again just before: the wall clock may have been stepped since the first anchor (a
  // run once printed a negative median).
  calibrateClock();
  const code = `import time\nfor i in range(${LINES}):\n    print(time.time_ns() / 1e6, flush=True)\n    time.sleep(${GAP_MS / 1000})`;
  const result = await client.callTool({ name: 'run_code', arguments: { code } }, undefined, {
    timeout: 600_000,
    onprogress: (p) => {
      const now = wallNow();
      for (const line of (p.message ?? '').split('\n')) if (line !== '') progressLatency.push(now - Number(line));
    },
  });
  if (result.isError) throw new Error(`run_code failed: ${JSON.stringify(result.content)}`);
  await client.close();
  if (progressLatency.length !== LINES) throw new Error(`expected ${LINES} lines, got ${progressLatency.length} by progress`);

  console.log(`MCP: a print in the sandbox → the client's notification (${LINES} lines, ${GAP_MS} ms apart, Streamable HTTP on loopback)\n`);
  console.log(
    table(
      ['notification', 'median', 'p99', 'max'],
      [
        ['notifications/progress', fmtMs(median(progressLatency)), fmtMs(pct(progressLatency, 99)), fmtMs(Math.max(...progressLatency))],
        ['notifications/message', fmtMs(median(logLatency)), fmtMs(pct(logLatency, 99)), fmtMs(Math.max(...logLatency))],
      ],
    ),
  );
  recordFigure('mcp', { median_ms: median(progressLatency), p99_ms: pct(progressLatency, 99) });
} finally {
  await stop();
}
