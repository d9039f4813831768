/**
 * Starts a real redis-server (Debian's, which .ci/run installs) on a free loopback port with
 * its own temporary directory, for tests of the Redis backend; it can be stopped, killed,
 * restarted on the same port and directory, and paused (CLIENT PAUSE). One per test file.
 *
 * When redis-server is not installed: in CI (`CI=true`) that is a failure; elsewhere the
 * caller gets null and skips, saying why. A test file of the Redis code takes its Redis, its
 * connections and proxies from useRedis().
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { RedisConnection } from '../../../packages/server/dist/internal/redis/redis-connection.js';
import { startTCPProxy, type TCPProxy } from './net.js';

export interface RedisServerOptions {
  /** AOF with an fsync per write (`--appendonly yes --appendfsync always`): a restart keeps every write. */
  aof?: boolean;
}

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** True while a redis-server process of ours is running. */
  readonly running: boolean;
  /** Its pid while running (for a synchronous kill when the test process exits abruptly). */
  readonly pid: number | undefined;
  /** Runs one command on a short-lived client of its own (e.g. CLIENT PAUSE, TTL, XRANGE). */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
  /** SIGKILL, as a crash: with AOF (fsync always) every acknowledged write survives it. */
  kill(): Promise<void>;
  /** SIGTERM and wait (without AOF, no snapshot is written either: a restart starts empty). */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory, with the same persistence. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/** Why redis-server cannot be used here, or null when it can. */
export function redisServerMissing(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `redis-server is not installed (${r.error?.message ?? `exit ${r.status}`}); apt-get install redis-server, as .ci/run does`;
  return null;
}

/** The `skip` option of a test that needs redis-server: why it cannot run here, or false (in CI a missing one fails instead: startRedis throws). */
export function redisSkip(): string | false {
  const missing = redisServerMissing();
  return missing && process.env['CI'] !== 'true' ? missing : false;
}

/** Starts one; null (skip) when redis-server is absent outside CI, a thrown error in CI. */
export async function startRedis(opts: RedisServerOptions = {}): Promise<TestRedis | null> {
  const missing = redisServerMissing();
  if (missing) {
    if (process.env['CI'] === 'true') throw new Error(`CI: ${missing}`);
    return null;
  }
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-'));
  const port = await freePort();
  let proc: ChildProcess | null = null;
  let output = '';

  const args = (): string[] => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.aof ? 'yes' : 'no', ...(opts.aof ? ['--appendfsync', 'always'] : []),
    '--daemonize', 'no', '--loglevel', 'warning', '--protected-mode', 'yes',
  ];

  const start = async (): Promise<void> => {
    output = '';
    const p = spawn('redis-server', args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout?.setEncoding('utf8').on('data', (t: string) => (output += t));
    p.stderr?.setEncoding('utf8').on('data', (t: string) => (output += t));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode}:\n${output}`);
      try {
        if ((await command('PING')) === 'PONG') return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${port} in 15 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    proc = null;
  };

  const command = async (name: string, ...rest: (string | number)[]): Promise<unknown> => {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.call(name, ...rest);
    } finally {
      client.disconnect();
    }
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running() {
      const p = proc as ChildProcess | null;
      return p !== null && p.exitCode === null && p.signalCode === null;
    },
    get pid() {
      const p = proc as ChildProcess | null;
      return p !== null && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
    },
    command,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    start,
    async close() {
      await end('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One test file's Redis (useRedis): every connection and proxy it hands out is closed after the file's tests, then the server. */
export interface RedisFixture {
  /** The tests' `skip` option (redisSkip). */
  readonly skip: string | false;
  /** The running redis-server (asserts it started). */
  readonly server: TestRedis;
  /**
   * Resolves once the server is up (or skipped), rejects when it failed to start: for a file's
   * own `before` hook that uses it, since node:test runs a file's top-level `before` hooks at once.
   */
  ready(): Promise<void>;
  /** The file's own connection with its prefix, made on first use. */
  readonly conn: RedisConnection;
  /** Another connection with the file's prefix (another node), to `url`: the server's, or a proxy's in front of it. */
  connection(url?: string): RedisConnection;
  /** A TCP proxy in front of the server that can misbehave (helpers/net.ts). */
  proxy(): Promise<TCPProxy>;
  /** One command on a short-lived client of its own (TestRedis.command). */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * Starts a redis-server before the calling file's tests and stops it after them (call it at the
 * file's top level), with the keys of every connection it makes under `prefix`.
 */
export function useRedis(opts: RedisServerOptions & { prefix: string }): RedisFixture {
  let server: TestRedis | null = null;
  let conn: RedisConnection | null = null;
  const conns: RedisConnection[] = [];
  const proxies: TCPProxy[] = [];
  let starting: Promise<void> | null = null;
  // Whichever asks first starts it (this hook, or a file's own hook through ready()).
  const start = (): Promise<void> =>
    (starting ??= (async () => {
      server = await startRedis(opts.aof === undefined ? {} : { aof: opts.aof });
    })());
  before(() => start());
  after(async () => {
    // A test may have closed some already: closing again is a no-op.
    await Promise.all(conns.map((c) => c.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await server?.close();
  });
  const running = (): TestRedis => {
    assert.ok(server, 'redis-server started');
    return server;
  };
  const connection = (url = running().url): RedisConnection => {
    const c = new RedisConnection({ url, prefix: opts.prefix });
    conns.push(c);
    return c;
  };
  return {
    skip: redisSkip(),
    get server() {
      return running();
    },
    get conn() {
      conn ??= connection();
      return conn;
    },
    ready: start,
    connection,
    async proxy() {
      const p = await startTCPProxy(running().port, 'redis');
      proxies.push(p);
      return p;
    },
    command: (name, ...args) => running().command(name, ...args),
  };
}

/** XREAD calls blocked in Redis now (CLIENT LIST: `cmd=xread`, flag `b`): a follower is waiting there. */
export async function blockedXReads(command: (name: string, ...args: (string | number)[]) => Promise<unknown>): Promise<number> {
  const list = String(await command('CLIENT', 'LIST'));
  return list.split('\n').filter((l) => / cmd=xread( |$)/.test(l) && / flags=\w*b/.test(l)).length;
}

/** A loopback port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (!addr || typeof addr !== 'object') throw new Error('no port');
  return addr.port;
}
