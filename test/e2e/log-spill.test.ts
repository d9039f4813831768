/**
 * Finished logs spill to disk, end to end (real server, real bubblewrap): once an execution has
 * finished, its events move to a file under `<SLUICE_DATA_DIR>/logs`, and a client resuming with
 * `Last-Event-ID` or `?from=` (SSE, NDJSON) or asking for the fold gets exactly what the live
 * stream carried; after SLUICE_LOG_RETENTION the file is gone with the execution. A running
 * execution with a lot of output writes its older events to that file as it runs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionEvent } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { doneOf, readNDJSON, readSSE, runStream, text } from './helpers/client.js';

/** Seconds a finished execution stays: long enough for the resumes, short enough to see it go. */
const RETENTION_SEC = 20;

let server: TestServer;
before(async () => {
  const uidBase = 3_800_000 + randomInt(0, 50_000) * 64;
  server = await startServer({ SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: '64', SLUICE_LOG_RETENTION: String(RETENTION_SEC) });
});
after(async () => {
  await server?.stop();
});

async function logFiles(): Promise<string[]> {
  return readdir(join(server.dataDir, 'logs')).catch(() => []);
}

/** Polls `cond` until it holds or `ms` pass. */
async function until(cond: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** What a reader can compare across transports (arrival times and `ts` aside, the events are the log's). */
function plain(events: readonly ExecutionEvent[]): string[] {
  return events.map((e) => JSON.stringify(e, (k, v: unknown) => (k === 'arrivedAt' ? undefined : v)));
}

test('a finished execution spilled to disk resumes from any Last-Event-ID exactly as it streamed live, and goes after retention', async () => {
  // ~8 MiB of numbered 64-byte lines and some stderr: many events, above the spill threshold.
  const code = [
    'import sys',
    'for i in range(128):',
    '    sys.stdout.write("".join(f"{i:04d}:{j:05d}".ljust(63, ".") + "\\n" for j in range(1024)))',
    '    if i % 16 == 0:',
    '        sys.stdout.flush()',
    '        print(f"err {i} é中文😀", file=sys.stderr, flush=True)',
  ].join('\n');
  const live = await runStream(server.url, 'spill', { language: 'python', mode: 'process', code, timeout: 120 });
  assert.equal(live.done.exit_code, 0, live.stderr);
  assert.equal(live.stdout.length, 128 * 1024 * 64);
  const start = live.events[0];
  assert.ok(start?.type === 'start');
  const id = start.execution_id;
  const last = live.events.length;
  assert.ok(last > 20, `${last} events`);

  await until(async () => (await logFiles()).length === 1, 'the log file', 30_000);

  const expected = plain(live.events);
  for (const seen of [0, 1, 2, Math.floor(last / 2), last - 1]) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (seen > 0) headers['last-event-id'] = String(seen);
    const res = await fetch(`${server.url}/api/executions/${id}/events`, { headers });
    assert.equal(res.status, 200);
    assert.deepEqual(plain(await readSSE(res)), expected.slice(seen), `resumed after ${seen}`);
  }
  const done = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': String(last) } });
  assert.equal(done.status, 204, 'past the last event');

  const ndjson = await fetch(`${server.url}/api/executions/${id}/events?from=${last - 5}`, { headers: { accept: 'application/x-ndjson' } });
  assert.deepEqual(plain(await readNDJSON(ndjson)), expected.slice(last - 6));
  // Whole: batches of long output events (written as they are, between their frames) and short ones.
  const wholeNDJSON = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { accept: 'application/x-ndjson' } });
  assert.deepEqual(plain(await readNDJSON(wholeNDJSON)), expected);

  const view = await fetch(`${server.url}/api/executions/${id}`);
  assert.equal(view.status, 200);
  const fold = (await view.json()) as { stdout: string; stderr: string; exit_code: number; last_seq: number };
  assert.equal(fold.stdout, live.stdout);
  assert.equal(fold.stderr, text(live.events, 'stderr'));
  assert.equal(fold.last_seq, last);

  await until(async () => (await logFiles()).length === 0, 'retention to remove the file', (RETENTION_SEC + 60) * 1000);
  assert.equal((await fetch(`${server.url}/api/executions/${id}`)).status, 404);
});

test('a running execution writes its older output to its log file as it runs, and a resume from the start reads it back while it still runs', async () => {
  // ~12 MiB of numbered lines, then it waits (still running) until the test lets it end.
  const code = [
    'import os, sys, time',
    'for i in range(192):',
    '    sys.stdout.write("".join(f"{i:04d}:{j:05d}".ljust(63, ".") + "\\n" for j in range(1024)))',
    'sys.stdout.flush()',
    'print("waiting", flush=True)',
    'while not os.path.exists("go"):',
    '    time.sleep(0.05)',
    'print("went", flush=True)',
  ].join('\n');
  const isWaiting = (e: ExecutionEvent): boolean => e.type === 'stdout' && e.content.includes('waiting');
  const res = await fetch(`${server.url}/api/sessions/tail/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'python', mode: 'process', code, timeout: 120 }),
  });
  assert.equal(res.status, 200);
  let executionID = '';
  let waiting!: () => void;
  const reachedWaiting = new Promise<void>((r) => (waiting = r));
  const liveDone = readSSE(res, (e) => {
    if (e.type === 'start') executionID = e.execution_id;
    if (isWaiting(e)) waiting();
  });
  await Promise.race([reachedWaiting, liveDone.then(() => assert.fail('the run ended before it waited'))]);
  const sizes = await Promise.all((await logFiles()).map(async (f) => (await stat(join(server.dataDir, 'logs', f))).size));
  assert.ok(sizes.some((n) => n > 8 * 1024 * 1024), `a log file holds most of the output while it runs: ${JSON.stringify(sizes)}`);

  // Resumed from the start while it still runs: everything up to the wait, read back from the file.
  const resume = new AbortController();
  const resumed: ExecutionEvent[] = [];
  const again = await fetch(`${server.url}/api/executions/${executionID}/events?from=1`, { headers: { accept: 'text/event-stream' }, signal: resume.signal });
  assert.equal(again.status, 200);
  await readSSE(
    again,
    (e) => {
      resumed.push(e);
      if (isWaiting(e)) resume.abort();
    },
    resume.signal,
  ).catch((err: unknown) => {
    if (!resume.signal.aborted) throw err;
  });
  const put = await fetch(`${server.url}/api/sessions/tail/files/go`, { method: 'PUT', body: 'go' });
  assert.ok(put.ok, `PUT go: ${put.status}`);
  const live = await liveDone;
  assert.equal(doneOf(live).exit_code, 0);
  assert.equal(text(live, 'stdout').length, 192 * 1024 * 64 + 'waiting\nwent\n'.length);
  assert.ok(resumed.length > 1 && isWaiting(resumed.at(-1) as ExecutionEvent), 'the resume reached the wait');
  assert.deepEqual(plain(resumed), plain(live.slice(0, resumed.length)));
});
