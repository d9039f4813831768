/**
 * The bounded event log never lies, end to end (real server, real bubblewrap): a flood of a
 * million `progress` events written straight to fd 3 cannot push the program's prints out of
 * the log (old progress goes first, the newest stays), and when the log does drop output, the
 * buffered answer, `GET /api/executions/{id}` and the SSE stream all say so.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { ExecutionResult } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON, readSSE, text } from './helpers/client.js';

/** Server A: default limits. */
let server: TestServer;
/** Server B: a 1 MiB output limit, so its log (2 × 1 MiB + 1 MiB) cannot hold 1 MB of escaped output. */
let small: TestServer;
const SMALL_OUTPUT_LIMIT = 1024 * 1024;
before(async () => {
  const uidBase = 3_400_000 + randomInt(0, 50_000) * 128;
  [server, small] = await Promise.all([
    startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: '64' }),
    startServer({ SLUICE_UID_BASE: String(uidBase + 64), SLUICE_UID_COUNT: '64', SLUICE_OUTPUT_LIMIT: String(SMALL_OUTPUT_LIMIT) }),
  ]);
});
after(async () => {
  await Promise.all([server?.stop(), small?.stop()]);
});

type Fold = ExecutionResult & { execution_id: string; state?: string };

/** `POST /run` with the default Accept: the buffered fold; the id comes from the header. */
async function runBuffered(base: string, session: string, code: string): Promise<{ fold: Fold; id: string }> {
  const res = await postJSON(`${base}/api/sessions/${session}/run`, { language: 'python', mode: 'process', code, timeout: 120 });
  assert.equal(res.status, 200, await res.clone().text());
  const fold = (await res.json()) as Fold;
  return { fold, id: fold.execution_id };
}

async function executionView(base: string, id: string): Promise<Fold> {
  const res = await fetch(`${base}/api/executions/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Fold;
}

/** Python that writes `lines` copies of `line` straight to fd 3 (no helper, no acknowledgement). */
const RAW_WRITER = `
import os
def raw(line, lines):
    chunk = memoryview(line * lines)
    while chunk:
        chunk = chunk[os.write(3, chunk):]
`;

test('a million progress events on fd 3 do not push out a single print, and the folds say what was dropped', async () => {
  const batches = 100;
  const perBatch = 10_000;
  const code = `${RAW_WRITER}
for k in range(${batches}):
    raw(b'{"type":"progress","percent":1}\\n', ${perBatch})
    if k % 20 == 0:
        print(f"print {k}", flush=True)
raw(b'{"type":"progress","percent":100,"message":"last"}\\n', 1)
print("end", flush=True)
`;
  const prints = `${Array.from({ length: batches / 20 }, (_, i) => `print ${i * 20}\n`).join('')}end\n`;
  const total = batches * perBatch + 1;

  const { fold, id } = await runBuffered(server.url, 'flood', code);
  assert.equal(fold.exit_code, 0, fold.stderr);
  assert.equal(fold.stdout, prints, 'every print is in the buffered answer');
  assert.equal(fold.gap, true, 'the buffered answer says events are missing');
  const dropped = fold.evicted.types.progress ?? 0;
  assert.ok(dropped > 0, 'progress events were dropped');
  assert.equal(fold.progress.length + dropped, total, 'held + dropped progress = every progress sent');
  assert.deepEqual(fold.evicted.types, { progress: dropped }, 'only progress was dropped');
  assert.equal(fold.evicted.events, dropped);
  assert.deepEqual(fold.progress.at(-1), { percent: 100, message: 'last' }, 'the newest progress stays');
  assert.equal(fold.truncated, false, 'no output is missing');
  assert.deepEqual(fold.dropped_bytes, { stdout: 0, stderr: 0 });

  const view = await executionView(server.url, id);
  assert.equal(view.stdout, prints);
  assert.equal(view.gap, true);
  assert.deepEqual(view.evicted, fold.evicted);

  // SSE of the same run: gaps where progress went, every print there.
  const sse = await readSSE(await fetch(`${server.url}/api/executions/${id}/events`, { headers: { accept: 'text/event-stream' } }));
  assert.equal(text(sse, 'stdout'), prints);
  let missing = 0;
  for (const e of sse) if (e.type === 'gap') missing += e.to_seq - e.from_seq + 1;
  assert.equal(missing, dropped, 'the gaps cover exactly the dropped events');
});

test('output the log could not hold is reported as lost by the buffered answer, the execution view and SSE', async () => {
  // 1 MB of \\x01 fits the 1 MiB output limit, but escaped as \\u0001 it is 6 MB of JSON: the log
  // cannot hold it. Its head went to its file as it ran (events there stay); the rest is bounded
  // in memory, where the oldest go: what is lost is one run in the middle.
  const n = 1_000_000;
  const code = `import sys\nsys.stdout.write("\\x01" * ${n})\nsys.stdout.flush()\n`;
  const { fold, id } = await runBuffered(small.url, 'escapes', code);
  assert.equal(fold.exit_code, 0, fold.stderr);
  assert.ok(fold.stdout.length < n, 'the log could not hold it all (the premise)');
  assert.equal(fold.gap, true);
  assert.equal(fold.truncated, true, 'the stdout in the answer is incomplete');
  assert.equal(fold.stdout.length + fold.dropped_bytes.stdout, n, 'dropped_bytes counts exactly what is missing');
  assert.equal(fold.evicted.stdout_bytes, fold.dropped_bytes.stdout);
  assert.ok((fold.evicted.types.stdout ?? 0) > 0);
  assert.ok((fold.evicted.from_seq ?? 0) > 1, 'the head written to the log\'s file stays');

  const view = await executionView(small.url, id);
  assert.equal(view.truncated, true);
  assert.deepEqual(view.dropped_bytes, fold.dropped_bytes);
  assert.deepEqual(view.evicted, fold.evicted);

  const sse = await readSSE(await fetch(`${small.url}/api/executions/${id}/events`, { headers: { accept: 'text/event-stream' } }));
  assert.equal(sse[0]?.type, 'start');
  const gaps = sse.flatMap((e) => (e.type === 'gap' ? [[e.from_seq, e.to_seq]] : []));
  assert.deepEqual(gaps, [[fold.evicted.from_seq, fold.evicted.to_seq]], 'one gap, exactly what went');
});
