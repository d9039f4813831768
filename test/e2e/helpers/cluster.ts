/**
 * A scale-out cluster for end-to-end tests: a real redis-server, M API nodes and N workers, each
 * a separate `sluice serve --role api|worker` process (the CLI) on a free loopback port with its
 * own data dir, all started at once. Any node can be SIGKILLed or stopped; the registry in Redis
 * says which worker holds a session (docs/scale-out.md, "Cluster state"). Everything is cleaned
 * up by close(), and the processes are SIGKILLed even when the test process exits without it.
 * A test file takes its cluster (and the scripted model its workers call) from useCluster().
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../../../packages/server/dist/internal/api-error.js';
import type { WorkerCommand } from '../../../packages/server/dist/internal/redis/commands.js';
import { Inbox } from '../../../packages/server/dist/internal/redis/inbox.js';
import { RedisConnection } from '../../../packages/server/dist/internal/redis/redis-connection.js';
import { call, sessionId } from './cluster-client.js';
import { CLI } from './server.js';
import { redisSkip, startRedis, type TestRedis } from './redis-server.js';
import { startScriptedLLM, type ScriptedLLM } from './scripted-llm.js';

export type NodeRole = 'api' | 'worker';

export interface ClusterNode {
  readonly role: NodeRole;
  /** `api0`, `worker1`…: how failure messages name it. */
  readonly name: string;
  /** Its HTTP base URL (a worker's is also the URL it registers for API nodes). */
  readonly url: string;
  readonly dataDir: string;
  readonly proc: ChildProcess;
  /** True until the process has exited. */
  readonly alive: boolean;
  /** Everything it printed (stdout and stderr, the last 1 MiB). */
  logs(): string;
  /** SIGKILL, as a crash; resolves once it has exited. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 15 s); resolves once it has exited. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  apis?: number;
  workers?: number;
  /** Redis with AOF and `appendfsync always` (a restart keeps every acknowledged write). */
  aof?: boolean;
  /** SLUICE_* settings for every node (e.g. SLUICE_API_KEYS). */
  env?: Record<string, string>;
}

export interface TestCluster {
  readonly redis: TestRedis;
  readonly apis: readonly ClusterNode[];
  readonly workers: readonly ClusterNode[];
  /** Every node's log, labelled, for assertion messages. */
  logs(): string;
  /** Worker ids with a live lease. */
  liveWorkerIds(): Promise<string[]>;
  /** The worker node a session was placed on (from its registry entry), or undefined. */
  workerOf(sessionId: string): Promise<ClusterNode | undefined>;
  /** A session's registry hash (`worker`, `state`, …), {} when there is none. */
  sessionEntry(sessionId: string): Promise<Record<string, string>>;
  /** A new connection to its Redis with the nodes' key prefix, as another node would have; the caller closes it. */
  connection(): RedisConnection;
  close(): Promise<void>;
}

/** The key prefix the nodes use (RedisConnection's default). */
export const PREFIX = 'sluice:';
const LOG_CAP = 1 << 20;
const START_MS = 90_000;
/** After every node is healthy, registration is a heartbeat away. */
const REGISTER_MS = 30_000;

// Processes of ours still running, killed synchronously if the test process exits without close().
const live = new Set<ChildProcess>();
const livePids = new Set<() => number | undefined>();
let exitHook = false;
function hookExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of live) p.kill('SIGKILL');
    for (const pid of livePids) {
      const n = pid();
      if (n !== undefined) {
        try {
          process.kill(n, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  });
}

/** Starts Redis and the nodes (in parallel); null when redis-server is missing outside CI. */
export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster | null> {
  hookExit();
  const redis = await startRedis(opts.aof ? { aof: true } : {});
  if (!redis) return null;
  const redisPid = (): number | undefined => redis.pid;
  livePids.add(redisPid);
  const root = await mkdtemp(join(tmpdir(), 'sluice-cluster-'));
  // The sandboxes' uids must traverse it to reach the workspaces below.
  await chmod(root, 0o711);
  const nodes: ClusterNode[] = [];
  const workerIds = new Map<string, ClusterNode>();

  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.close();
    livePids.delete(redisPid);
    // A SIGKILLed worker leaves its workspaces mounted (its next start would sweep them).
    await unmountUnder(root);
    await rm(root, { recursive: true, force: true, maxRetries: 5 });
  };

  try {
    // Disjoint host uid ranges: two workers on one machine must not hand out the same uid.
    const uidBase = 3_000_000 + randomInt(0, 40_000) * 256;
    const starts: Promise<ClusterNode>[] = [];
    const spec: [NodeRole, number][] = [
      ['worker', opts.workers ?? 2],
      ['api', opts.apis ?? 2],
    ];
    for (const [role, count] of spec) {
      for (let i = 0; i < count; i++) {
        const env: Record<string, string> = { SLUICE_REDIS_URL: redis.url, ...(opts.env ?? {}) };
        if (role === 'worker') Object.assign(env, { SLUICE_UID_BASE: String(uidBase + i * 128), SLUICE_UID_COUNT: '128' });
        starts.push(startNode(role, `${role}${i}`, join(root, `${role}${i}`), env, nodes));
      }
    }
    const settled = await Promise.allSettled(starts);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const workers = nodes.filter((n) => n.role === 'worker').sort((a, b) => a.name.localeCompare(b.name));
    const apis = nodes.filter((n) => n.role === 'api').sort((a, b) => a.name.localeCompare(b.name));

    const liveWorkerIds = async (): Promise<string[]> => {
      const keys = (await redis.command('KEYS', `${PREFIX}lease:*`)) as string[];
      return keys.map((k) => k.slice(`${PREFIX}lease:`.length));
    };
    const logs = (): string => nodes.map((n) => `--- ${n.name} (${n.alive ? 'alive' : `exited ${n.proc.exitCode ?? n.proc.signalCode}`}) ---\n${n.logs()}`).join('\n');

    // Ready once every worker holds a lease and its id maps to its node (by the URL it registered).
    const deadline = Date.now() + REGISTER_MS;
    for (;;) {
      for (const id of await liveWorkerIds()) {
        if (workerIds.has(id)) continue;
        const url = (await redis.command('HGET', `${PREFIX}worker:${id}`, 'url')) as string | null;
        const node = workers.find((w) => w.url === url);
        if (node) workerIds.set(id, node);
      }
      if (workerIds.size >= workers.length) break;
      if (Date.now() > deadline) throw new Error(`only ${workerIds.size} of ${workers.length} workers registered in Redis in ${REGISTER_MS / 1000} s:\n${logs()}`);
      await sleep(50);
    }

    const sessionKey = async (sessionId: string): Promise<string | undefined> => {
      const keys = (await redis.command('KEYS', `${PREFIX}session:*:${sessionId}`)) as string[];
      if (keys.length > 1) throw new Error(`session id ${sessionId} is in Redis ${keys.length} times: ${keys.join(', ')}`);
      return keys[0];
    };
    const sessionEntry = async (sessionId: string): Promise<Record<string, string>> => {
      const key = await sessionKey(sessionId);
      if (!key) return {};
      const flat = (await redis.command('HGETALL', key)) as string[];
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
      return out;
    };

    return {
      redis,
      apis,
      workers,
      logs,
      liveWorkerIds,
      sessionEntry,
      async workerOf(sessionId) {
        const wid = (await sessionEntry(sessionId))['worker'];
        return wid === undefined ? undefined : workerIds.get(wid);
      },
      connection: () => new RedisConnection({ url: redis.url, prefix: PREFIX }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** What useCluster starts besides startCluster's options. */
export interface ClusterFixtureOptions extends ClusterOptions {
  /** A scripted model on loopback as the workers' LLM endpoint (SLUICE_LLM_BASE_URL, SLUICE_LLM_MODEL gpt-4o-mini). */
  model?: boolean;
}

/** One test file's cluster (useCluster); its getters assert that what they return started. */
export interface ClusterFixture {
  /** The tests' `skip` option (redisSkip). */
  readonly skip: string | false;
  cluster(): TestCluster;
  /** The scripted model (only with `model: true`). */
  model(): ScriptedLLM;
}

/**
 * Starts a cluster (and, with `model`, the scripted model its workers call) before the calling
 * file's tests and closes both after them; call it at the file's top level.
 */
export function useCluster(opts: ClusterFixtureOptions = {}): ClusterFixture {
  const skip = redisSkip();
  let cluster: TestCluster | null = null;
  let llm: ScriptedLLM | null = null;
  before(async () => {
    if (skip) return;
    const { model, ...options } = opts;
    if (model) llm = await startScriptedLLM();
    const modelEnv: Record<string, string> = llm ? { SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_MODEL: 'gpt-4o-mini' } : {};
    cluster = await startCluster({ ...options, env: { ...modelEnv, ...(opts.env ?? {}) } });
  });
  after(async () => {
    await cluster?.close();
    await llm?.close();
  });
  return {
    skip,
    cluster: () => {
      assert.ok(cluster, 'cluster started');
      return cluster;
    },
    model: () => {
      assert.ok(llm, 'scripted model started');
      return llm;
    },
  };
}

/**
 * Sends `command` (made for a fresh session id no worker holds) straight to a live worker's
 * inbox, as an API node would, and asserts the worker refuses it (NOT_FOUND) rather than run it
 * in a blank session: no session of that id shows on the API node `api`.
 */
export async function assertUnheldSessionRefused(cluster: TestCluster, api: string, command: (sessionID: string) => WorkerCommand): Promise<void> {
  const [wid] = await cluster.liveWorkerIds();
  assert.ok(wid, 'a live worker');
  const sid = sessionId('ghost');
  const conn = cluster.connection();
  try {
    await assert.rejects(new Inbox(conn).send(wid, command(sid)), (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND');
  } finally {
    await conn.close();
  }
  const list = (await (await call(api, 'GET', '/api/sessions')).json()) as { sessions?: { id: string }[] };
  assert.ok(!list.sessions?.some((s) => s.id === sid), `no session ${sid} on the API node`);
}

async function startNode(role: NodeRole, name: string, dataDir: string, extra: Record<string, string>, nodes: ClusterNode[]): Promise<ClusterNode> {
  await mkdir(dataDir, { recursive: true });
  const proc = spawn(process.execPath, [CLI, 'serve', '--role', role, '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], {
    // As helpers/server.ts: no compiler caches, a short drain so stop() ends a node left busy.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_LOG_LEVEL: 'warn', SLUICE_WARM_RUNTIMES: 'false', SLUICE_DRAIN_GRACE: '3', ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let output = '';
  const add = (t: string): void => {
    output += t;
    if (output.length > LOG_CAP) output = output.slice(-LOG_CAP);
  };
  proc.stdout?.setEncoding('utf8').on('data', add);
  proc.stderr?.setEncoding('utf8').on('data', add);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  void exited.then(() => live.delete(proc));
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null;
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (alive()) {
      proc.kill(signal);
      const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const node: ClusterNode = {
    role,
    name,
    url: '',
    dataDir,
    proc,
    get alive() {
      return alive();
    },
    logs: () => output,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
  // Registered before it is ready, so close() stops it even if its start fails.
  nodes.push(node);

  const deadline = Date.now() + START_MS;
  let url: string | undefined;
  for (;;) {
    if (!alive()) throw new Error(`${name} (--role ${role}) exited with ${proc.exitCode ?? proc.signalCode}:\n${output}`);
    url ??= /listening on (http:\/\/[^\s]+)/.exec(output)?.[1];
    if (url !== undefined) {
      try {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // Not answering yet.
      }
    }
    if (Date.now() > deadline) throw new Error(`${name} (--role ${role}) was not healthy in ${START_MS / 1000} s (url ${url ?? 'not printed'}):\n${output}`);
    await sleep(50);
  }
  Object.defineProperty(node, 'url', { value: url.replace(/\/+$/, ''), enumerable: true });
  return node;
}

/** Lazily unmounts every mount below `dir`, deepest first (what a SIGKILLed worker left). */
async function unmountUnder(dir: string): Promise<void> {
  let info: string;
  try {
    info = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}
