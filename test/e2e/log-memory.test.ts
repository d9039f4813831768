/**
 * Every byte the server holds for event logs is within SLUICE_LOG_BUDGET, end to end (real
 * server, real bubblewrap): rounds of concurrent floods of tiny events, written straight to
 * fd 3, leave the server's resident memory within a bound derived from the budget, running
 * logs included, while the newest executions stay readable.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionResult } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON } from './helpers/client.js';

const MiB = 1024 * 1024;
/** The server's log budget: small, so that a flood is far past it within seconds. */
const BUDGET = 16 * MiB;
/**
 * How far above its idle baseline the server's RSS may be after the floods: the budget, the
 * same again for garbage the collector has not returned yet (the floods allocate fast), and
 * 96 MiB for what any busy server holds (buffers, the folds answered, the JIT, malloc arenas).
 * Without the budget applied to running logs and real memory, each flood's log alone holds
 * ~100 MiB (33 MiB of JSON characters in ~500k small strings and objects).
 */
const RSS_BOUND = 2 * BUDGET + 96 * MiB;
const ROUNDS = 2;
const CONCURRENT = 3;
const EVENTS = 600_000;

let server: TestServer;
before(async () => {
  const uidBase = 3_700_000 + randomInt(0, 50_000) * 64;
  server = await startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: '64', SLUICE_LOG_BUDGET: String(BUDGET) });
});
after(async () => {
  await server?.stop();
});

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  assert.ok(kb, `no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

/** A program that writes `EVENTS` tiny progress events straight to fd 3, with a print before and after. */
const FLOOD = `
import os
print("begin", flush=True)
chunk = memoryview(b'{"type":"progress","percent":7}\\n' * 10000)
for _ in range(${EVENTS / 10_000}):
    rest = chunk
    while rest:
        rest = rest[os.write(3, rest):]
print("end", flush=True)
`;

async function flood(session: string): Promise<ExecutionResult> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/run`, { language: 'python', mode: 'process', code: FLOOD, timeout: 120 });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as ExecutionResult;
}

test('rounds of concurrent tiny-event floods keep the server within a bound derived from its log budget', async () => {
  const pid = server.proc.pid;
  assert.ok(pid !== undefined);
  // Warm the server up (a first run compiles and allocates what every later run reuses).
  await flood('warm');
  const baseline = await rss(pid);
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss(pid));
      await sleep(50);
    }
  })();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const folds = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => flood(`flood-${round}-${i}`)));
      for (const f of folds) {
        assert.equal(f.exit_code, 0, f.stderr);
        assert.equal(f.stdout, 'begin\nend\n', 'the prints outlive the flood');
        assert.equal(f.progress.length + (f.evicted.types.progress ?? 0), EVENTS, 'held + dropped = sent');
      }
    }
  } finally {
    sampling = false;
    await sampler;
  }
  // Garbage is returned lazily: allow the collector a few seconds once the server is idle.
  let now = await rss(pid);
  for (const deadline = Date.now() + 20_000; now - baseline > RSS_BOUND && Date.now() < deadline; now = await rss(pid)) await sleep(250);
  const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;
  const summary = `baseline ${mib(baseline)}, peak ${mib(peak)}, settled ${mib(now)}, bound baseline + ${mib(RSS_BOUND)}`;
  console.log(summary);
  assert.ok(now - baseline <= RSS_BOUND, summary);
  assert.ok(peak - baseline <= RSS_BOUND + BUDGET, `peak: ${summary}`);
  // The newest execution is still readable.
  const list = await fetch(`${server.url}/api/sessions/flood-${ROUNDS - 1}-0`);
  assert.equal(list.status, 200);
});
