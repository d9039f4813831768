/**
 * A TCP proxy in front of a test Redis that can misbehave as networks do: `pass` forwards both
 * ways; `blackhole` forwards nothing and closes nothing (a half-open connection, a partition);
 * `eatNextReply()` lets the next reply from Redis vanish and cuts that connection (the command
 * ran, its client never hears so).
 */
import { createServer, connect, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'blackhole';

export interface RedisProxy {
  readonly url: string;
  mode: ProxyMode;
  /** Replies eaten so far. */
  readonly cuts: number;
  eatNextReply(): void;
  close(): Promise<void>;
}

export async function startRedisProxy(port: number): Promise<RedisProxy> {
  const sockets = new Set<Socket>();
  let eat = false;
  let cuts = 0;
  const state: { mode: ProxyMode } = { mode: 'pass' };
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    const gone = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', gone).on('close', gone);
    upstream.on('error', gone).on('close', gone);
    client.on('data', (d) => {
      if (state.mode === 'pass') upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (state.mode !== 'pass') return;
      if (eat) {
        eat = false;
        cuts++;
        gone();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('no port');
  return {
    url: `redis://127.0.0.1:${addr.port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: ProxyMode) {
      state.mode = m;
    },
    get cuts() {
      return cuts;
    },
    eatNextReply: () => {
      eat = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** XREAD calls blocked in Redis now (CLIENT LIST: `cmd=xread`, flag `b`): a follower is waiting there. */
export async function blockedXReads(command: (name: string, ...args: (string | number)[]) => Promise<unknown>): Promise<number> {
  const list = String(await command('CLIENT', 'LIST'));
  return list.split('\n').filter((l) => / cmd=xread( |$)/.test(l) && / flags=\w*b/.test(l)).length;
}
