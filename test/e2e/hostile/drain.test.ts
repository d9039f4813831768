/**
 * Draining end to end: SIGTERM to `sluice serve` during running executions. From that moment new
 * sessions and runs are refused (503 SANDBOX_UNAVAILABLE with Retry-After, `/healthz` too) while
 * reads go on; queued executions are cancelled; running ones finish if they can within
 * SLUICE_DRAIN_GRACE (`done` reason `exited`) or are cancelled when it ends (`cancelled`, with
 * SIGKILL for those that ignore SIGTERM); every connected stream receives its `done`; then the
 * workspaces are removed and the process exits 0 with nothing of its sandboxes left on the host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { assertContiguous, doneOf, postJSON, readSSE, text, type Timed } from '../helpers/client.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { hostProcesses, mountsUnder, waitFor } from '../helpers/host.js';

const UID_COUNT = 64;

/** A server with a host uid range of its own, so the `ps` checks see only its sandboxes. */
async function drainingServer(env: Record<string, string>): Promise<{ server: TestServer; uidBase: number }> {
  const uidBase = 7_000_000 + randomInt(0, 50_000) * UID_COUNT;
  const server = await startServer({ ...env, SLUICE_UID_BASE: String(uidBase), SLUICE_UID_COUNT: String(UID_COUNT) });
  return { server, uidBase };
}

interface Live {
  id: string;
  events: Promise<Timed[]>;
  /** Resolves at the first event matching `pred`. */
  when(pred: (e: Timed) => boolean): Promise<void>;
}

/** Follows an SSE response, remembering its events. */
function follow(res: Response, id: string): Live {
  const seen: Timed[] = [];
  const waiters: { pred: (e: Timed) => boolean; resolve: () => void }[] = [];
  const events = readSSE(res, (e) => {
    seen.push(e);
    for (const w of waiters.filter((x) => x.pred(e))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  events.catch(() => {});
  return {
    id,
    events,
    when: (pred) =>
      seen.some(pred)
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiters.push({ pred, resolve })),
            events.then(() => {
              throw new Error(`the stream ended first: ${JSON.stringify(seen)}`);
            }),
          ]),
  };
}

async function start(server: TestServer, session: string, body: Record<string, unknown>): Promise<Live> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, body);
  assert.equal(res.status, 200, `stream answered ${res.status}`);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id);
  return follow(res, id);
}

/** A second reader of an execution, as a client that reconnected would be. */
async function reader(server: TestServer, id: string): Promise<Live> {
  const res = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  return follow(res, id);
}

function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
  if (proc.exitCode !== null || proc.signalCode !== null) throw new Error('the server exited before the test stopped it');
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
}

/**
 * Sends SIGTERM and waits until the server has taken it (it says "draining" on stderr, in the
 * same tick as it starts refusing): a signal is delivered asynchronously, so on a busy machine a
 * request sent right after kill() can reach the server's event loop before the signal does.
 */
async function sigterm(server: TestServer): Promise<void> {
  assert.ok(server.proc.kill('SIGTERM'));
  await waitFor('the server to take SIGTERM', 10_000, async () => (/SIGTERM: draining/.test(server.logs()) ? true : undefined));
}

/** Asserts the refusals a draining server gives to new work, and that it still answers reads. */
async function assertRefusesNewWork(server: TestServer, runningID: string, existingSession: string): Promise<void> {
  const refusals: [string, () => Promise<Response>][] = [
    ['a run on a new session', () => postJSON(`${server.url}/api/sessions/drain-new/run`, { code: 'echo no', language: 'bash' })],
    ['a run on an existing session', () => postJSON(`${server.url}/api/sessions/${existingSession}/stream`, { code: 'echo no', language: 'bash' })],
    ['a new session', () => postJSON(`${server.url}/api/sessions`, {})],
    ['/healthz', () => fetch(`${server.url}/healthz`)],
  ];
  for (const [what, send] of refusals) {
    const res = await send();
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    assert.equal(res.status, 503, `${what} while draining: ${JSON.stringify(body)}`);
    assert.equal(body.error?.code, 'SANDBOX_UNAVAILABLE', what);
    assert.match(body.error?.message ?? '', /shutting down/, what);
    assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/, `${what}: Retry-After`);
  }
  const state = await fetch(`${server.url}/api/executions/${runningID}`);
  assert.equal(state.status, 200, 'reads are still served while draining');
  assert.equal(((await state.json()) as Record<string, unknown>)['state'], 'running');
}

/** After exit: no process of the server's uid range (live or zombie), none with `marker`, no workspace. */
async function assertNothingLeft(server: TestServer, uidBase: number, marker?: string): Promise<void> {
  const procs = await hostProcesses();
  assert.deepEqual(procs.filter((p) => p.uid >= uidBase && p.uid < uidBase + UID_COUNT), [], 'sandbox processes after exit');
  if (marker !== undefined) assert.deepEqual(procs.filter((p) => p.args.includes(marker)), [], `${marker} after exit`);
  assert.deepEqual(await readdir(join(server.dataDir, 'workspaces')), [], 'workspaces after exit');
}

const ticking = (n: number, everyS: number): string => `for i in $(seq 0 ${n - 1}); do echo "tick $i"; sleep ${everyS}; done`;
const ticks = (n: number): string => Array.from({ length: n }, (_, i) => `tick ${i}\n`).join('');

test('SIGTERM with a generous grace: new work refused, running executions finish (exited), queued ones cancelled, exit 0', async () => {
  const { server, uidBase } = await drainingServer({ SLUICE_DRAIN_GRACE: '20' });
  try {
    const main = await start(server, 'main', { code: ticking(10, 0.3), language: 'bash' });
    const queued = await start(server, 'main', { code: 'echo never', language: 'bash' });
    const beside = await start(server, 'beside', { code: `echo begin; sleep 1; ${ticking(3, 0.2)}`, language: 'bash' });
    await main.when((e) => e.type === 'stdout' && e.content.includes('tick 1'));
    await beside.when((e) => e.type === 'stdout');
    const second = await reader(server, main.id);

    const exit = exitOf(server.proc);
    const t0 = performance.now();
    await sigterm(server);
    await assertRefusesNewWork(server, main.id, 'main');

    for (const live of [main, second]) {
      const events = await live.events;
      assertContiguous(events);
      assert.equal(text(events, 'stdout'), ticks(10), 'every tick, during the drain too');
      const done = doneOf(events);
      assert.equal(done.reason, 'exited');
      assert.equal(done.exit_code, 0);
    }
    const besideEvents = await beside.events;
    assert.equal(text(besideEvents, 'stdout'), `begin\n${ticks(3)}`);
    assert.equal(doneOf(besideEvents).reason, 'exited');
    const queuedEvents = await queued.events;
    assert.deepEqual(
      queuedEvents.map((e) => e.type),
      ['done'],
      'the queued execution never started',
    );
    assert.equal(doneOf(queuedEvents).reason, 'cancelled');

    const { code, signal, at } = await exit;
    assert.equal(signal, null);
    assert.equal(code, 0, `exit status; logs:\n${server.logs()}`);
    assert.ok(at - t0 < 10_000, `exited ${Math.round(at - t0)} ms after SIGTERM: as soon as the runs ended, not after the whole grace`);
    await assertNothingLeft(server, uidBase);
  } finally {
    await server.stop();
  }
});

test('SIGTERM with a short grace: what still runs is cancelled (SIGKILL for a SIGTERM-ignorer), every stream gets done, exit 0', async () => {
  const { server, uidBase } = await drainingServer({ SLUICE_DRAIN_GRACE: '1', SLUICE_KILL_GRACE_MS: '500' });
  const marker = `sleep 37.${randomInt(100000, 999999)}`;
  try {
    const sleeper = await start(server, 'sleeper', { code: 'import time\nprint("up", flush=True)\ntime.sleep(30)', language: 'python', mode: 'process' });
    const stubborn = await start(server, 'stubborn', { code: `trap "" TERM; echo up; ${marker}; echo survived`, language: 'bash' });
    const quick = await start(server, 'quick', { code: ticking(3, 0.2), language: 'bash' });
    await sleeper.when((e) => e.type === 'stdout');
    await stubborn.when((e) => e.type === 'stdout');
    const exit = exitOf(server.proc);
    const t0 = performance.now();
    await sigterm(server);
    await assertRefusesNewWork(server, sleeper.id, 'sleeper');

    // The quick run fits in the grace and ends normally, streaming every tick.
    const quickEvents = await quick.events;
    assertContiguous(quickEvents);
    assert.equal(text(quickEvents, 'stdout'), ticks(3));
    assert.equal(doneOf(quickEvents).reason, 'exited');
    for (const [live, what, killedBy] of [[sleeper, 'sleeper', 'SIGTERM'], [stubborn, 'SIGTERM-ignoring', 'SIGKILL']] as const) {
      const events = await live.events;
      assertContiguous(events);
      assert.equal(text(events, 'stdout'), 'up\n', what);
      const done = doneOf(events);
      assert.equal(done.reason, 'cancelled', what);
      assert.equal(done.signal, killedBy, what);
    }
    const { code, signal, at } = await exit;
    assert.equal(signal, null);
    assert.equal(code, 0, `exit status; logs:\n${server.logs()}`);
    // 1 s grace + 0.5 s SIGTERM → SIGKILL + teardown.
    assert.ok(at - t0 < 8000, `exited ${Math.round(at - t0)} ms after SIGTERM`);
    await assertNothingLeft(server, uidBase, marker);
  } finally {
    await server.stop();
  }
});

test('a second SIGTERM cuts the grace short', async () => {
  const { server, uidBase } = await drainingServer({ SLUICE_DRAIN_GRACE: '60', SLUICE_KILL_GRACE_MS: '300' });
  try {
    const sleeper = await start(server, 'sleeper', { code: 'echo up; sleep 30', language: 'bash' });
    await sleeper.when((e) => e.type === 'stdout');
    const exit = exitOf(server.proc);
    const t0 = performance.now();
    await sigterm(server);
    await assertRefusesNewWork(server, sleeper.id, 'sleeper');
    server.proc.kill('SIGTERM');
    assert.equal(doneOf(await sleeper.events).reason, 'cancelled');
    const { code, at } = await exit;
    assert.equal(code, 0);
    assert.ok(at - t0 < 5000, `exited ${Math.round(at - t0)} ms after the first SIGTERM, not after the 60 s grace`);
    await assertNothingLeft(server, uidBase);
  } finally {
    await server.stop();
  }
});

test('a session still being removed when the server stops (MCP session ended) is gone before it exits: no mount, no process', async () => {
  // DELETE /mcp is answered at once and removes its Sluice session behind the answer, with no
  // request open; the session manager's close() must wait for that removal too. Its run ignores
  // SIGTERM (still in its 3 s kill grace when the server stops); a second SIGTERM closes the
  // server at once. (The race this guards is narrow: the close kills the run at once, and the
  // removal usually beats the exit; once in CI it did not, and a workspace stayed mounted.)
  const { server, uidBase } = await drainingServer({ SLUICE_DRAIN_GRACE: '60', SLUICE_KILL_GRACE_MS: '3000' });
  const marker = `sleep 38.${randomInt(100000, 999999)}`;
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  const client = new Client({ name: 'sluice-e2e-drain', version: '1.0.0' });
  // The call never gets its answer (its session is ended under it): abandoned at the end.
  const abandon = new AbortController();
  try {
    await client.connect(transport);
    const sessionID = /Sluice session (mcp-[0-9a-f]+)/.exec(client.getInstructions() ?? '')?.[1];
    assert.ok(sessionID, 'the instructions name the Sluice session');
    let up!: () => void;
    const isUp = new Promise<void>((r) => (up = r));
    void client
      .callTool({ name: 'run_command', arguments: { command: `trap "" TERM; echo up; ${marker}` } }, undefined, { timeout: 60_000, signal: abandon.signal, onprogress: (p) => (p.message ?? '').includes('up') && up() })
      .catch(() => null);
    await isUp;
    await transport.terminateSession();
    await waitFor('the Sluice session to leave the list', 10_000, async () => ((await fetch(`${server.url}/api/sessions/${sessionID}`)).status === 404 ? true : undefined));
    const exit = exitOf(server.proc);
    await sigterm(server);
    server.proc.kill('SIGTERM');
    const { code } = await exit;
    assert.equal(code, 0, server.logs());
    assert.deepEqual(await mountsUnder(server.dataDir), [], 'no workspace mount left');
    await assertNothingLeft(server, uidBase, marker);
  } finally {
    abandon.abort();
    await client.close().catch(() => {});
    await server.stop();
  }
});
