/** Loopback servers that tests put in front of Sluice (proxies that cut or pass connections). */
import assert from 'node:assert/strict';
import type { Server } from 'node:net';

export interface Listening {
  url: string;
  /** Destroys `sockets` (the connections the test still holds) and closes the server. */
  close(): Promise<void>;
}

/** Listens on a free loopback port. */
export async function listenLoopback(server: Server, sockets: Set<{ destroy(): void }>): Promise<Listening> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  assert.ok(addr && typeof addr === 'object');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
