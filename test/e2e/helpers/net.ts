/** Loopback servers that tests put in front of Sluice or Redis (proxies that cut or pass connections). */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Listening {
  url: string;
  /** Destroys `sockets` (the connections the test still holds) and closes the server. */
  close(): Promise<void>;
}

/** Listens on a free loopback port; `url` is `<scheme>://127.0.0.1:<port>`. */
export async function listenLoopback(server: Server, sockets: Set<{ destroy(): void }>, scheme = 'http'): Promise<Listening> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  assert.ok(addr && typeof addr === 'object');
  return {
    url: `${scheme}://127.0.0.1:${addr.port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Tracks a proxied pair of connections in `sockets`: either side ending or failing destroys both and forgets them. Returns that teardown. */
export function pairConnections(down: Socket, up: Socket, sockets: Set<{ destroy(): void }>): () => void {
  sockets.add(down).add(up);
  const drop = (): void => {
    down.destroy();
    up.destroy();
    sockets.delete(down);
    sockets.delete(up);
  };
  down.on('error', drop).on('close', drop);
  up.on('error', drop).on('close', drop);
  return drop;
}

/** `pass` forwards both ways; `blackhole` forwards nothing and closes nothing (a half-open connection, a partition). */
export type ProxyMode = 'pass' | 'blackhole';

export interface TCPProxy extends Listening {
  mode: ProxyMode;
  /** Replies eaten so far (eatNextReply). */
  readonly cuts: number;
  /** The next bytes from upstream vanish and that connection is cut: the request ran, its client never hears so. */
  eatNextReply(): void;
}

/** A TCP proxy to loopback `port` that can misbehave as networks do (ProxyMode, eatNextReply); `url` has `scheme`. */
export async function startTCPProxy(port: number, scheme: string): Promise<TCPProxy> {
  const sockets = new Set<Socket>();
  let eat = false;
  let cuts = 0;
  const state: { mode: ProxyMode } = { mode: 'pass' };
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    const gone = pairConnections(client, upstream, sockets);
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
  const listening = await listenLoopback(server, sockets, scheme);
  return {
    ...listening,
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
  };
}
