/**
 * The review's findings on the scale-out wiring (issue 16), at the level of the Redis pieces,
 * against a real redis-server: the inbox's start/abandon handshake (a command that started is
 * never reported as "retry"; one abandoned never starts, and its retry runs once), the
 * Idempotency-Key's id recorded through a lost reply and its calls bounded under a paused
 * Redis, fencing well before a reaper can act, and sandbox slots that lapse per execution.
 * Every wait is a poll with a deadline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionView } from '@sluice/protocol';
import { ApiError } from '../../packages/server/dist/internal/api-error.js';
import { Admission } from '../../packages/server/dist/internal/redis/admission.js';
import { ClusterRegistry } from '../../packages/server/dist/internal/redis/cluster-registry.js';
import type { CommandHandlers } from '../../packages/server/dist/internal/redis/commands.js';
import { RedisIdempotency } from '../../packages/server/dist/internal/redis/idempotency.js';
import { Inbox } from '../../packages/server/dist/internal/redis/inbox.js';
import { until } from './helpers/cluster-client.js';
import { useRedis } from './helpers/redis-server.js';

const PREFIX = 'wtest:';
const redis = useRedis({ prefix: PREFIX });

/** Handlers whose `run` records that the code started, then waits for `gate` before answering. */
function gatedRuns(ran: string[], gate: Promise<void> = Promise.resolve()): CommandHandlers {
  const unexpected = (): Promise<never> => Promise.reject(new Error('unexpected command'));
  return {
    create_session: unexpected,
    delete_session: unexpected,
    run: async (c) => {
      ran.push(c.execution_id);
      await gate;
      return { execution_id: c.execution_id };
    },
    cancel: unexpected,
    stdin: unexpected,
    restart: async (c) => ({ session: { id: c.session_id } as SessionView, restarted: [] }),
    agent: unexpected,
    agent_cancel: unexpected,
    forget_conversation: unexpected,
  };
}

test('inbox: a run whose code started but whose worker answers after the sender\'s wait is not reported as "retry": the sender waits and gets its result', { skip: redis.skip }, async () => {
  const worker = redis.connection();
  const reg = new ClusterRegistry(worker, { leaseMs: 5000 });
  const w = await reg.register({ url: 'http://slow:1', heartbeatMs: 100, onLeaseLost: () => {} });
  const ran: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const stop = new AbortController();
  const consuming = new Inbox(worker).consume(w.id, gatedRuns(ran, gate), stop.signal, { blockMs: 100 });
  const started = Date.now();
  const sent = new Inbox(redis.connection()).send(w.id, { type: 'run', owner: null, session_id: 's', execution_id: 'late', request: { code: 'x' } }, { timeoutMs: 500, startedWaitMs: 10_000 });
  // The code starts at once; the worker's answer comes well after the sender's 500 ms.
  await until('the code started', 20_000, () => ran.length === 1);
  await until('the sender\'s wait passed', 20_000, () => Date.now() - started > 1500);
  open();
  assert.deepEqual(await sent, { execution_id: 'late' }, 'the started run is the answer, not SANDBOX_UNAVAILABLE "retry"');
  assert.deepEqual(ran, ['late']);
  stop.abort();
  await consuming;
  await w.stop();
});

test('inbox: a command the sender abandoned (its worker was not reading) never starts, and its retry runs exactly once', { skip: redis.skip }, async () => {
  const worker = redis.connection();
  const reg = new ClusterRegistry(worker, { leaseMs: 5000 });
  const w = await reg.register({ url: 'http://paused:1', heartbeatMs: 100, onLeaseLost: () => {} });
  const api = new Inbox(redis.connection());
  // The worker's inbox consumption is paused: nothing reads the command within the sender's wait.
  await assert.rejects(
    api.send(w.id, { type: 'run', owner: null, session_id: 's', execution_id: 'first', request: { code: 'x' } }, { timeoutMs: 300 }),
    (err: unknown) => err instanceof ApiError && err.code === 'SANDBOX_UNAVAILABLE' && err.retryAfter === 1 && /it will not run; retry/.test(err.message),
  );
  // Consumption resumes: the abandoned command is read, and skipped.
  const ran: string[] = [];
  const stop = new AbortController();
  const consuming = new Inbox(worker).consume(w.id, gatedRuns(ran), stop.signal, { blockMs: 100 });
  // The client's retry.
  assert.deepEqual(await api.send(w.id, { type: 'run', owner: null, session_id: 's', execution_id: 'retry', request: { code: 'x' } }), { execution_id: 'retry' });
  await until('the inbox is empty', 20_000, async () => Number(await redis.command('XLEN', `${PREFIX}inbox:${w.id}`)) === 0);
  assert.deepEqual(ran, ['retry'], 'the code ran once: the abandoned command never started');
  stop.abort();
  await consuming;
  await w.stop();
});

test('Idempotency-Key: when the reply to recording the execution id is lost, the request still gets its id, and a retry replays it', { skip: redis.skip }, async () => {
  const proxy = await redis.proxy();
  const node = new RedisIdempotency(redis.connection(proxy.url));
  let starts = 0;
  const id = await node.resolve(null, 'k-lost-reply', 'fp', () => false, async () => {
    starts++;
    // The execution started; the next reply (the id's compare-and-set) is lost with its connection.
    proxy.eatNextReply();
    return 'exec-1';
  });
  assert.equal(id, 'exec-1', 'the execution id, not an error (a 500 whose retry would run the code again)');
  assert.equal(proxy.cuts, 1, 'a reply was lost');
  const again = await new RedisIdempotency(redis.connection()).resolve(null, 'k-lost-reply', 'fp', () => true, async () => {
    starts++;
    return 'exec-2';
  });
  assert.equal(again, 'exec-1', 'a retry replays it');
  assert.equal(starts, 1);
});

test('Idempotency-Key: a paused Redis answers SANDBOX_UNAVAILABLE within a bound, never a hang', { skip: redis.skip }, async () => {
  const node = new RedisIdempotency(redis.connection());
  // Connected first, so the pause (writes only) catches the claim.
  await node.resolve(null, 'k-warm', 'fp', () => true, async () => 'warm');
  await redis.command('CLIENT', 'PAUSE', 12_000, 'WRITE');
  try {
    const started = Date.now();
    await assert.rejects(
      node.resolve(null, 'k-paused', 'fp', () => false, async () => 'never'),
      (err: unknown) => err instanceof ApiError && err.code === 'SANDBOX_UNAVAILABLE',
    );
    assert.ok(Date.now() - started < 10_000, `answered within the bound, before the pause ended (${Date.now() - started} ms)`);
  } finally {
    await redis.command('CLIENT', 'UNPAUSE');
  }
});

test('fencing: a worker whose renewals stop fences itself while its lease still holds in Redis (well before a reaper may act)', { skip: redis.skip }, async () => {
  const leaseMs = 2000;
  const worker = redis.connection();
  const reg = new ClusterRegistry(worker, { leaseMs });
  let lostAt = 0;
  let pttlAtLoss: number | null = null;
  const w = await reg.register({
    url: 'http://fence:1',
    heartbeatMs: 100,
    onLeaseLost: () => {
      lostAt = Date.now();
      // Reads still work under CLIENT PAUSE WRITE: how long Redis still holds the lease.
      void redis.command('PTTL', `${PREFIX}lease:${w.id}`).then((t) => (pttlAtLoss = Number(t)));
    },
  });
  await redis.command('CLIENT', 'PAUSE', 6000, 'WRITE');
  try {
    await until('the worker fenced itself', 10_000, () => lostAt > 0 && pttlAtLoss !== null);
  } finally {
    await redis.command('CLIENT', 'UNPAUSE');
  }
  assert.ok(pttlAtLoss !== null && pttlAtLoss >= leaseMs * 0.2, `the lease still held ${pttlAtLoss} ms when the worker fenced (lease ${leaseMs} ms)`);
  w.halt();
  // And no reaper takes it until half a lease after Redis dropped it.
  const reaper = new ClusterRegistry(redis.connection(), { leaseMs });
  await until('the lease is gone from Redis', 20_000, async () => Number(await redis.command('EXISTS', `${PREFIX}lease:${w.id}`)) === 0);
  const goneAt = Date.now();
  let reapedAt = 0;
  await until('reaped', 20_000, async () => {
    if ((await reaper.reapDeadWorkers(async () => {})).some((d) => d.id === w.id)) reapedAt = Date.now();
    return reapedAt > 0;
  });
  assert.ok(reapedAt - goneAt >= leaseMs * 0.3, `reaped ${reapedAt - goneAt} ms after the lease went (grace: half a lease)`);
});

test('admission: an execution acquired by a node that died before sending it lapses on its own, whatever later acquires do', { skip: redis.skip }, async () => {
  const caps = { maxRunning: 1, maxRunningPerTenant: 1, maxSessions: 9, maxSessionsPerTenant: 9 };
  const node = new Admission(redis.connection(), caps, { pendingMs: 600 });
  // The dead node's acquire: never released.
  await node.acquireRun('t', 'sess', 'orphan');
  // Live executions of the same session come and go (each renewed while it runs, then released).
  const until_ = Date.now() + 2000;
  let i = 0;
  while (Date.now() < until_) {
    const id = `live-${i++}`;
    await node.acquireRun('t', 'sess', id);
    await node.renewRun('t', 'sess', id);
    await node.releaseRun('t', 'sess', id);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The orphan lapsed: the slot is free for another session (maxRunning 1).
  await node.checkRun('t', 'other');
  assert.equal(await node.running('t'), 0);
});
