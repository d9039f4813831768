/**
 * The cluster building blocks against a real redis-server: worker registration and least-loaded
 * placement, leases (a worker that cannot renew learns it; exactly one of two racing reapers
 * takes a dead worker), endIfOpen against the writer's own end (exactly one `done`), the
 * inbox's at-most-once delivery, admission caps and Idempotency-Key across two connections
 * ("nodes"), and that every key has a TTL or is deleted. Timings are small (lease 300 ms);
 * every wait is a poll with a generous deadline.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DoneEvent, ExecutionEvent, SessionView } from '@sluice/protocol';
import { ApiError } from '../../packages/server/dist/internal/api-error.js';
import { Admission } from '../../packages/server/dist/internal/redis/admission.js';
import { ClusterRegistry, type DeadWorker, type WorkerLease } from '../../packages/server/dist/internal/redis/cluster-registry.js';
import type { CommandHandlers } from '../../packages/server/dist/internal/redis/commands.js';
import { RedisIdempotency } from '../../packages/server/dist/internal/redis/idempotency.js';
import { Inbox, OutcomeUnknown } from '../../packages/server/dist/internal/redis/inbox.js';
import { RedisConnection } from '../../packages/server/dist/internal/redis/redis-connection.js';
import { endIfOpen, RedisLogError, RedisLogReader, RedisLogWriter } from '../../packages/server/dist/internal/redis/redis-log.js';
import { SessionRegistry } from '../../packages/server/dist/internal/redis/session-registry.js';
import { until } from './helpers/cluster-client.js';
import { useRedis } from './helpers/redis-server.js';

const PREFIX = 'ctest:';
const LEASE = { leaseMs: 300 };
const HEARTBEAT_MS = 50;

const redis = useRedis({ prefix: PREFIX });
/** Two "nodes": each its own connections to the one Redis. */
let a: RedisConnection;
let b: RedisConnection;
let n = 0;

before(async () => {
  await redis.ready();
  if (redis.skip) return;
  a = redis.connection();
  b = redis.connection();
});

/** What a reaper appends (the contract's `sandbox_lost` reason joins DONE_REASONS when this is wired). */
const lostDone = { type: 'done', exit_code: null, duration: '0.000s', duration_ms: 0, reason: 'error' } as const;

/** Every event of a closed log. */
async function events(conn: RedisConnection, id: string): Promise<ExecutionEvent[]> {
  const r = await RedisLogReader.open<ExecutionEvent>(conn, id, { blockMs: 200 });
  assert.ok(r, `log ${id} exists`);
  const out: ExecutionEvent[] = [];
  for await (const batch of r.follow(1)) for (const e of batch) out.push(JSON.parse(e.json) as ExecutionEvent);
  return out;
}

const done = (exit: number | null): Omit<DoneEvent, 'seq' | 'ts'> => ({ type: 'done', exit_code: exit, duration: '0.001s', duration_ms: 1, reason: exit === null ? 'error' : 'exited' });

test('workers register with their URL and token; pickWorker takes the fewest running, then the fewest sessions, ties at random', { skip: redis.skip }, async () => {
  const reg = new ClusterRegistry(a, LEASE);
  const lost: string[] = [];
  const workers: WorkerLease[] = [];
  for (const url of ['http://w1:1', 'http://w2:2', 'http://w3:3']) {
    workers.push(await reg.register({ url, heartbeatMs: HEARTBEAT_MS, onLeaseLost: (why) => lost.push(why) }));
  }
  const [w1, w2, w3] = workers as [WorkerLease, WorkerLease, WorkerLease];
  const seen = new ClusterRegistry(b, LEASE);
  const live = await seen.liveWorkers();
  assert.deepEqual(live.map((w) => w.id).sort(), [w1.id, w2.id, w3.id].sort());
  assert.equal(live.find((w) => w.id === w2.id)?.url, 'http://w2:2');
  assert.equal(live.find((w) => w.id === w2.id)?.token, w2.token);
  assert.ok(w2.token.length >= 32, 'the access token is long and random');

  w1.setLoad({ sessions: 0, running: 2 });
  w2.setLoad({ sessions: 0, running: 1 });
  w3.setLoad({ sessions: 0, running: 1 });
  await until('the loads reach Redis', 20_000, async () => {
    const ws = await seen.liveWorkers();
    return ws.find((w) => w.id === w1.id)?.running === 2 && ws.find((w) => w.id === w2.id)?.running === 1 && ws.find((w) => w.id === w3.id)?.running === 1;
  });
  // w2 and w3 tie on running; each placement counts at once, so a burst alternates between them (never w1).
  const placed = await Promise.all(Array.from({ length: 6 }, (_, i) => seen.pickWorker(null, `place${i}`)));
  assert.ok(placed.every((p) => p.added));
  const count = (id: string): number => placed.filter((p) => p.worker.id === id).length;
  assert.deepEqual([count(w1.id), count(w2.id), count(w3.id)], [0, 3, 3], 'fewest running, then fewest sessions, each counted at once');
  // A placement whose session was not created is undone.
  const first = placed[0];
  assert.ok(first);
  const size = async (): Promise<number> => Number(await redis.command('SCARD', `${PREFIX}worker:${first.worker.id}:sessions`));
  const before = await size();
  await seen.unplace(first.worker.id, null, 'place0');
  assert.equal(await size(), before - 1);
  // A draining worker gets nothing new.
  await w2.markDraining();
  for (let i = 0; i < 4; i++) assert.equal((await seen.pickWorker(null, `drain${i}`)).worker.id, w3.id, 'w2 drains: w3 takes them');

  await Promise.all(workers.map((w) => w.stop()));
  assert.deepEqual(await seen.liveWorkers(), []);
  await assert.rejects(seen.pickWorker(null, 'none'), (err: unknown) => err instanceof ApiError && err.code === 'SANDBOX_UNAVAILABLE');
  assert.deepEqual(lost, [], 'a clean stop is not a lost lease');
});

test('a worker whose heartbeats Redis does not take (CLIENT PAUSE WRITE) learns its lease is lost, and stops renewing', { skip: redis.skip }, async () => {
  const reg = new ClusterRegistry(redis.connection(), LEASE);
  let lostAt = 0;
  let why = '';
  const w = await reg.register({ url: 'http://paused:1', heartbeatMs: HEARTBEAT_MS, onLeaseLost: (reason) => ((lostAt = Date.now()), (why = reason)) });
  const pausedAt = Date.now();
  await redis.command('CLIENT', 'PAUSE', 1500, 'WRITE');
  await until('onLeaseLost', 10_000, () => lostAt > 0);
  assert.ok(w.lost);
  assert.match(why, /not renewed for 210 ms/, 'it fences at 0.7 of its 300 ms lease');
  // It fenced itself before Redis would let a reaper act (the pause holds writes 1500 ms).
  assert.ok(lostAt - pausedAt < 1500, `learnt it ${lostAt - pausedAt} ms into the pause`);
  await until('the pause ends and the lease runs out', 20_000, async () => (await new ClusterRegistry(b, LEASE).liveWorkers()).every((x) => x.id !== w.id));
  // Reap it so its keys do not outlive the test.
  await until('reaped', 20_000, async () => (await reg.reapDeadWorkers(async () => {})).some((d) => d.id === w.id));
});

test('a worker that stops heartbeating: exactly one of two racing reapers takes it, ends its runs once, marks its sessions lost and deletes its keys', { skip: redis.skip }, async () => {
  const reg = new ClusterRegistry(a, LEASE);
  const sessions = new SessionRegistry(a);
  let lost = '';
  const w = await reg.register({ url: 'http://dying:1', heartbeatMs: HEARTBEAT_MS, onLeaseLost: (why) => (lost = why) });
  const owner = `tenant-${++n}`;
  await sessions.claim(owner, 's1', w.id, { language: 'python' }, { idleTTLMs: 60_000 });
  await sessions.claim(null, 's2', w.id, { language: 'bash' }, { idleTTLMs: 60_000 });
  const execs = [`exec:r${n}a`, `exec:r${n}b`];
  const writers = await Promise.all(execs.map((id) => RedisLogWriter.create<ExecutionEvent>(a, id, { retentionSec: 60 })));
  for (const wr of writers) wr.append({ type: 'stdout', content: 'working\n' });
  await Promise.all(writers.map((wr) => wr.flushed()));
  for (const id of execs) await w.markRunning(id);
  await w.markRunning(`run:r${n}`, 'agent');
  // The second execution finished by itself before the worker died: not to be ended again.
  await w.markFinished(execs[1] ?? '');

  w.halt();
  const ended: string[] = [];
  const end = async (dead: DeadWorker): Promise<void> => {
    for (const id of dead.executions) if (await endIfOpen(a, id, lostDone)) ended.push(id);
    await sessions.markLost(dead.id, dead.sessions);
  };
  const reapers = [new ClusterRegistry(a, LEASE), new ClusterRegistry(b, LEASE)];
  const got: DeadWorker[] = [];
  await until('one reaper takes the dead worker', 20_000, async () => {
    const rounds = await Promise.all(reapers.map((r) => r.reapDeadWorkers(end)));
    got.push(...rounds.flat());
    return got.length > 0;
  });
  // More rounds find nothing more.
  for (let i = 0; i < 5; i++) got.push(...(await Promise.all(reapers.map((r) => r.reapDeadWorkers(end)))).flat());
  assert.equal(got.length, 1, 'exactly one reaper took it');
  assert.equal(got[0]?.id, w.id);
  assert.deepEqual(got[0]?.executions, [execs[0]]);
  assert.deepEqual(got[0]?.agentRuns, [`run:r${n}`]);
  assert.deepEqual(got[0]?.sessions.map(([o, s]) => `${o}/${s}`).sort(), [`${owner}/s1`, 'null/s2'].sort());
  assert.deepEqual(ended, [execs[0]]);
  assert.equal(lost, '', 'a halted worker (as a crash) hears nothing');

  assert.equal((await sessions.get(owner, 's1'))?.state, 'lost');
  assert.equal((await sessions.get(null, 's2'))?.state, 'lost');
  const evs = await events(b, execs[0] ?? '');
  assert.deepEqual(evs.map((e) => e.type), ['stdout', 'done']);
  // The worker's own writer comes back too late: refused as ended, not a second done.
  writers[0]?.append(done(0));
  await assert.rejects(writers[0]?.close() ?? Promise.resolve(), (err: unknown) => err instanceof RedisLogError && err.reason === 'ended');
  assert.equal((await events(b, execs[0] ?? '')).filter((e) => e.type === 'done').length, 1);

  const left = (await redis.command('KEYS', `${PREFIX}*${w.id}*`)) as string[];
  assert.deepEqual(left.filter((k) => !k.startsWith(`${PREFIX}reap:`)), [], 'its keys are deleted (the reap claim expires on its own)');
  writers[1]?.append(done(0));
  await writers[1]?.close();
});

test('endIfOpen racing the writer\'s own done: exactly one done, every time, and the loser is told', { skip: redis.skip }, async () => {
  let reaperWon = 0;
  let writerWon = 0;
  for (let i = 0; i < 40; i++) {
    const id = `exec:race${++n}`;
    const w = await RedisLogWriter.create<ExecutionEvent>(a, id, { retentionSec: 60 });
    for (let j = 0; j < 20 + (i % 7) * 30; j++) w.append({ type: 'stdout', content: `${j}\n` });
    if (i % 2 === 0) await w.flushed();
    // Race: the writer ends on node a while a reaper on node b ends it too, the writer's end
    // coming at once, a few ms later, or (every fourth) only after the reaper finished.
    const reaper = endIfOpen(b, id, lostDone);
    if (i % 4 === 3) await reaper;
    else if (i % 4 !== 0) await new Promise((r) => setTimeout(r, i % 4 === 1 ? i % 3 : 5 + (i % 5)));
    w.append(done(0));
    const closed = w.close().then(
      () => true,
      (err: unknown) => {
        assert.ok(err instanceof RedisLogError && err.reason === 'ended', `the writer fails as ended, got ${String(err)}`);
        return false;
      },
    );
    const [reaped, writerClosed] = await Promise.all([reaper, closed]);
    assert.notEqual(reaped, writerClosed, 'exactly one of them ended the log');
    if (reaped) reaperWon++;
    else writerWon++;
    const evs = await events(a, id);
    const dones = evs.filter((e) => e.type === 'done');
    assert.equal(dones.length, 1, `one done in log ${i}`);
    assert.equal(evs.at(-1)?.type, 'done', 'and it is the last event');
    evs.forEach((e, k) => assert.equal(e.seq, k + 1, 'seqs stay contiguous'));
  }
  assert.ok(reaperWon >= 10 && writerWon > 0, `both sides won some (reaper ${reaperWon}, writer ${writerWon})`);
  // The writer's done is stored but its close is not (it died in between): the reaper closes the log without a second done.
  const id = `exec:race${++n}`;
  const w = await RedisLogWriter.create<ExecutionEvent>(a, id, { retentionSec: 60 });
  w.append({ type: 'stdout', content: 'x' });
  w.append(done(0));
  await w.flushed();
  assert.equal(await endIfOpen(b, id, lostDone), true);
  assert.deepEqual((await events(a, id)).map((e) => [e.type, e.type === 'done' ? e.exit_code : null]), [['stdout', null], ['done', 0]]);
  w.abandon();
  // A log that does not exist is not created by endIfOpen.
  assert.equal(await endIfOpen(a, 'exec:never', lostDone), false);
  assert.equal(await redis.command('EXISTS', `${PREFIX}log:{exec:never}:meta`), 0);
});

/** Handlers that record what ran; `run` answers with its execution id. */
function recordingHandlers(ran: string[], hooks: { onRun?: () => Promise<void> } = {}): CommandHandlers {
  const unexpected = (): Promise<never> => Promise.reject(new Error('unexpected command'));
  return {
    create_session: unexpected,
    delete_session: async (c) => (ran.push(`delete ${c.session_id}`), {}),
    run: async (c) => {
      ran.push(`run ${c.execution_id}`);
      await hooks.onRun?.();
      return { execution_id: c.execution_id };
    },
    cancel: async () => {
      throw new ApiError('NOT_FOUND', 'no execution with id "x"');
    },
    stdin: async (c) => (ran.push(`stdin ${c.data}`), { accepted: true, state: 'running' }),
    // Only the reply's arrival matters here, not the view.
    restart: async (c) => ({ session: { id: c.session_id } as SessionView, restarted: [] }),
    agent: unexpected,
    agent_cancel: unexpected,
    forget_conversation: unexpected,
  };
}

test('inbox: commands reach their worker, one session in order, replies carry results and ApiErrors', { skip: redis.skip }, async () => {
  const reg = new ClusterRegistry(a, LEASE);
  const w = await reg.register({ url: 'http://inbox:1', heartbeatMs: HEARTBEAT_MS, onLeaseLost: () => {} });
  const ran: string[] = [];
  const stop = new AbortController();
  const consuming = new Inbox(a).consume(w.id, recordingHandlers(ran), stop.signal, { blockMs: 200 });
  const api = new Inbox(b);
  const target = { owner: 't', session_id: 's' };
  const r = await api.send(w.id, { type: 'run', ...target, execution_id: 'e1', request: { code: 'print(1)' } });
  assert.deepEqual(r, { execution_id: 'e1' });
  const sends = [];
  for (let i = 0; i < 20; i++) sends.push(api.send(w.id, { type: 'stdin', ...target, execution_id: 'e1', data: String(i), eof: false }));
  await Promise.all(sends);
  assert.deepEqual(ran.slice(1), Array.from({ length: 20 }, (_, i) => `stdin ${i}`), 'one session\'s commands in the order sent');
  await assert.rejects(api.send(w.id, { type: 'cancel', ...target, execution_id: 'x' }), (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND' && err.status === 404);
  stop.abort();
  await consuming;
  await w.stop();
  await assert.rejects(api.send(w.id, { type: 'restart', ...target }), (err: unknown) => err instanceof ApiError && err.code === 'SANDBOX_UNAVAILABLE', 'a gone worker is refused at once');
  assert.equal(await redis.command('EXISTS', `${PREFIX}inbox:${w.id}`), 0, 'not re-created by the refused send');
});

test('inbox: a worker that dies after starting a command but before replying never gets it again; the sender is told it may have run', { skip: redis.skip }, async () => {
  const reg = new ClusterRegistry(a, LEASE);
  const w = await reg.register({ url: 'http://crash:1', heartbeatMs: HEARTBEAT_MS, onLeaseLost: () => {} });
  const workerConn = redis.connection();
  const ran: string[] = [];
  let crashed = false;
  const stop = new AbortController();
  // The "crash": the worker's Redis connections drop the moment the code would start.
  const crashing = new Inbox(workerConn).consume(w.id, recordingHandlers(ran, { onRun: async () => ((crashed = true), workerConn.close()) }), stop.signal, { blockMs: 200, unavailableMs: 500 }).catch(() => {});
  const started = Date.now();
  await assert.rejects(
    new Inbox(b).send(w.id, { type: 'run', owner: null, session_id: 's', execution_id: 'once', request: { code: 'rm -rf x' } }, { timeoutMs: 1500 }),
    // It had started: not a "retry" (no Retry-After), since a retry could run it twice.
    (err: unknown) => err instanceof OutcomeUnknown && err.code === 'SANDBOX_UNAVAILABLE' && err.retryAfter === undefined && err.executionID === 'once' && /started run but did not answer/.test(err.message),
  );
  assert.ok(Date.now() - started >= 1400, 'rejected at its deadline, not before');
  assert.ok(crashed);
  stop.abort();
  await crashing;
  // The worker comes back (same id, new connection) and reads its inbox again: the command is not redelivered.
  const again: string[] = [];
  const stop2 = new AbortController();
  const back = new Inbox(a).consume(w.id, recordingHandlers(again), stop2.signal, { blockMs: 100 });
  // A later command proves the consumer is reading; the earlier one never shows up.
  await new Inbox(b).send(w.id, { type: 'delete_session', owner: null, session_id: 'later' });
  assert.deepEqual(again, ['delete later']);
  assert.deepEqual(ran, ['run once'], 'the code was started once, by the first worker only');
  const pending = (await redis.command('XPENDING', `${PREFIX}inbox:${w.id}`, 'g')) as [number, ...unknown[]];
  assert.equal(pending[0], 1, 'the unanswered command stays pending, never claimed by anyone');
  stop2.abort();
  await back;
  await w.stop();
});

test('admission: sandbox slots and session caps hold across two nodes racing, with SessionManager\'s messages', { skip: redis.skip }, async () => {
  // Earlier tests' sessions (lost ones live out their TTL) count towards the server-wide cap.
  const before = Number(await redis.command('ZCARD', `${PREFIX}sessions`));
  const caps = { maxRunning: 3, maxRunningPerTenant: 2, maxSessions: before + 5, maxSessionsPerTenant: 3 };
  const nodes = [new Admission(a, caps), new Admission(b, caps)] as const;
  const t1 = `t${++n}`;
  const t2 = `u${n}`;
  // Tenant 1 races for 4 sessions' slots from both nodes: only 2 fit its cap.
  const results = await Promise.allSettled(['s1', 's2', 's3', 's4'].map((s, i) => (i % 2 === 0 ? nodes[0] : nodes[1]).acquireRun(t1, s, `e-${s}`)));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
  const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown;
  assert.ok(refused instanceof ApiError && refused.code === 'RATE_LIMITED' && refused.retryAfter === 1);
  assert.match(refused.message, /^this API key already has 2 sandboxes running, its maximum \(SLUICE_MAX_RUNNING_PER_TENANT\)/);
  // A session that holds a slot queues more runs without another slot.
  const holder = ['s1', 's2', 's3', 's4'].find((_, i) => results[i]?.status === 'fulfilled') ?? '';
  await nodes[1].acquireRun(t1, holder, 'e-second');
  await nodes[0].checkRun(t1, holder);
  // Tenant 2 takes the last server-wide slot; then the server is full for everyone.
  await nodes[0].acquireRun(t2, 'x1', 'e-x1');
  await assert.rejects(nodes[1].acquireRun(t2, 'x2', 'e-x2'), (err: unknown) => err instanceof ApiError && /^the server is running 3 sandboxes, its maximum \(SLUICE_MAX_RUNNING\)/.test(err.message));
  await assert.rejects(nodes[1].checkRun(null, 'y'), (err: unknown) => err instanceof ApiError && err.code === 'RATE_LIMITED');
  assert.equal(await nodes[1].running(), 3);
  assert.equal(await nodes[1].running(t1), 2);
  // The holder's slot is freed with its last execution, not before.
  await nodes[0].releaseRun(t1, holder, `e-${holder}`);
  await assert.rejects(nodes[1].checkRun(t2, 'x2'));
  // A second release of the same execution (a retried release) frees nothing more.
  await nodes[0].releaseRun(t1, holder, `e-${holder}`);
  await assert.rejects(nodes[1].checkRun(t2, 'x2'));
  await nodes[1].releaseRun(t1, holder, 'e-second');
  await nodes[1].checkRun(t2, 'x2');
  await nodes[1].acquireRun(t2, 'x2', 'e-x2');
  // The reaper's correction frees a dead worker's session whatever it counted.
  await nodes[0].acquireRun(t2, 'x2', 'e-x2b');
  await nodes[0].releaseSession(t2, 'x2');
  assert.equal(await nodes[1].running(t2), 1);

  // Sessions: 6 claims race across both nodes for one tenant with a cap of 3.
  const regs = [new SessionRegistry(a), new SessionRegistry(b)];
  const claims = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => regs[i % 2]!.claim(t1, `c${i}`, 'w', {}, { idleTTLMs: 60_000, caps: nodes[0].sessionCaps })));
  assert.equal(claims.filter((r) => r.status === 'fulfilled').length, 3);
  const capped = claims.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown;
  assert.ok(capped instanceof ApiError && capped.retryAfter === 5);
  assert.match(capped.message, /^this API key already has 3 sessions, its maximum \(SLUICE_MAX_SESSIONS_PER_TENANT\)/);
  await assert.rejects(nodes[1].checkSession(t1), /already has 3 sessions/);
  // The server-wide cap: 2 more fit (5), the next does not.
  await regs[0]!.claim(t2, 'd1', 'w', {}, { idleTTLMs: 60_000, caps: nodes[0].sessionCaps });
  await regs[1]!.claim(null, 'd2', 'w', {}, { idleTTLMs: 60_000, caps: nodes[0].sessionCaps });
  await assert.rejects(regs[0]!.claim(null, 'd3', 'w', {}, { idleTTLMs: 60_000, caps: nodes[0].sessionCaps }), new RegExp(`^ApiError: the server has ${before + 5} sessions, its maximum \\(SLUICE_MAX_SESSIONS\\)`));
  // An existing id is refused as SessionManager does; removing one makes room.
  const taken = claims.findIndex((r) => r.status === 'fulfilled');
  await assert.rejects(regs[1]!.claim(t1, `c${taken}`, 'w', {}, { idleTTLMs: 60_000 }), (err: unknown) => err instanceof ApiError && err.code === 'INVALID_REQUEST' && /already exists/.test(err.message));
  await regs[1]!.remove(t1, `c${taken}`);
  await nodes[0].checkSession(t1);
  assert.equal((await regs[0]!.list(t1)).length, 2);
  // Clean up this test's slots and sessions (the TTL test below checks the rest).
  for (const s of ['s1', 's2', 's3', 's4']) await nodes[0].releaseSession(t1, s);
  await nodes[0].releaseSession(t2, 'x1');
  await nodes[0].releaseSession(t2, 'x2');
});

test('sessions: get, list, touch and execution records are per owner; another owner\'s look like missing ones', { skip: redis.skip }, async () => {
  const regA = new SessionRegistry(a);
  const regB = new SessionRegistry(b);
  const owner = `o${++n}`;
  const s = await regA.claim(owner, 'sess', 'w1', { language: 'python', env_keys: [] }, { idleTTLMs: 2000 });
  assert.equal(s.state, 'live');
  const got = await regB.get(owner, 'sess');
  assert.deepEqual(got && { worker: got.worker, settings: got.settings, incarnation: got.incarnation }, { worker: 'w1', settings: { language: 'python', env_keys: [] }, incarnation: s.incarnation });
  assert.equal(await regB.get('someone-else', 'sess'), null);
  assert.deepEqual((await regB.list(owner)).map((x) => x.id), ['sess']);
  assert.deepEqual(await regB.list('someone-else'), []);
  const ttl = (await redis.command('PTTL', `${PREFIX}session:${a.ownerPart(owner)}:sess`)) as number;
  assert.ok(ttl > 0 && ttl <= 2000, `the idle TTL (${ttl})`);
  await until('time passes', 20_000, async () => ((await redis.command('PTTL', `${PREFIX}session:${a.ownerPart(owner)}:sess`)) as number) < 1500);
  assert.ok((await regB.touch(owner, 'sess')) !== null);
  assert.ok(((await redis.command('PTTL', `${PREFIX}session:${a.ownerPart(owner)}:sess`)) as number) > 1500, 'touch renews the idle TTL');
  await until('the session expires when idle', 10_000, async () => (await regB.get(owner, 'sess')) === null);
  assert.deepEqual(await regB.list(owner), [], 'and leaves the index');
  assert.equal(await regB.touch(owner, 'sess'), null);

  await regA.addWork('exec', 'e-1', { owner, sessionID: 'sess', worker: 'w1' }, 60);
  assert.deepEqual(await regB.execution(owner, 'e-1'), { owner, sessionID: 'sess', worker: 'w1' });
  await assert.rejects(regB.execution('someone-else', 'e-1'), (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND' && err.message === 'no execution with id "e-1"');
  await assert.rejects(regB.execution(null, 'e-1'), (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND');
  await regA.addWork('run', 'r-1', { owner: null, sessionID: 'sess', worker: 'w1' }, 60);
  assert.equal((await regB.agentRun(null, 'r-1')).worker, 'w1');
});

test('Idempotency-Key across nodes: concurrent duplicates share one execution, another body is refused, a failed start gives the key up', { skip: redis.skip }, async () => {
  const nodes = [new RedisIdempotency(a), new RedisIdempotency(b)];
  const key = `k${++n}`;
  let starts = 0;
  let release: (id: string) => void = () => {};
  const start = (): Promise<string> => {
    starts++;
    return new Promise((r) => (release = r));
  };
  const first = nodes[0]!.resolve('t', key, 'fp', () => true, start);
  await until('the first claimed the key', 20_000, async () => starts === 1);
  const second = nodes[1]!.resolve('t', key, 'fp', () => true, start);
  const third = nodes[0]!.resolve('t', key, 'fp', () => true, start);
  await assert.rejects(nodes[1]!.resolve('t', key, 'other body', () => true, start), (err: unknown) => err instanceof ApiError && err.code === 'INVALID_REQUEST' && /^Idempotency-Key: already used within 24 h for a different request/.test(err.message));
  release('exec-1');
  assert.deepEqual(await Promise.all([first, second, third]), ['exec-1', 'exec-1', 'exec-1']);
  assert.equal(starts, 1, 'the code ran once');
  const ttl = (await redis.command('TTL', `${PREFIX}idem:${a.ownerPart('t')}:${key}`)) as number;
  assert.ok(ttl > 86_000 && ttl <= 86_400, `remembered 24 h (${ttl} s)`);
  // Another owner's key of the same name is another key.
  assert.equal(await nodes[1]!.resolve('u', key, 'other body', () => true, async () => 'exec-u'), 'exec-u');
  // An execution that can no longer be replayed is started afresh under the same key.
  assert.equal(await nodes[1]!.resolve('t', key, 'fp', (id) => id !== 'exec-1', async () => 'exec-2'), 'exec-2');
  // A start that fails gives the key up: the retry starts again.
  const k2 = `k${++n}`;
  await assert.rejects(nodes[0]!.resolve(null, k2, 'fp', () => true, async () => Promise.reject(new ApiError('SANDBOX_UNAVAILABLE', 'no worker'))), /no worker/);
  assert.equal(await nodes[1]!.resolve(null, k2, 'fp', () => true, async () => 'exec-3'), 'exec-3');
});

test('every key the cluster pieces leave has a TTL (or was deleted by its owner)', { skip: redis.skip }, async () => {
  // A last scenario touching every piece, so the scan below sees each kind of key.
  const reg = new ClusterRegistry(a, LEASE);
  const w = await reg.register({ url: 'http://ttl:1', heartbeatMs: HEARTBEAT_MS, onLeaseLost: () => {} });
  await new SessionRegistry(a).claim(null, 'ttl', w.id, {}, { idleTTLMs: 60_000 });
  await w.markRunning('exec:ttl');
  const stop = new AbortController();
  const consuming = new Inbox(a).consume(w.id, recordingHandlers([]), stop.signal, { blockMs: 100 });
  await new Inbox(b).send(w.id, { type: 'restart', owner: null, session_id: 'ttl' });
  await new Admission(a, { maxRunning: 9, maxRunningPerTenant: 9, maxSessions: 9, maxSessionsPerTenant: 9 }).acquireRun('t', 'ttl', 'e-ttl');
  stop.abort();
  await consuming;
  w.halt();
  const keys = (await redis.command('KEYS', `${PREFIX}*`)) as string[];
  assert.ok(keys.length > 10, `a fair sample of keys (${keys.length})`);
  const kinds = new Set(keys.map((k) => k.slice(PREFIX.length).split(/[:{]/)[0]));
  for (const kind of ['workers', 'lease', 'worker', 'inbox', 'session', 'sessions', 'exec', 'running', 'slot', 'idem', 'log']) assert.ok(kinds.has(kind), `a ${kind} key is among them`);
  const noTTL: string[] = [];
  for (const k of keys) {
    const ttl = (await redis.command('PTTL', k)) as number;
    if (ttl === -1) noTTL.push(k);
  }
  assert.deepEqual(noTTL, [], 'keys without a TTL');
  await until('the halted worker is reaped', 20_000, async () => (await reg.reapDeadWorkers(async () => {})).some((d) => d.id === w.id));
});
