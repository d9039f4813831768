import WebSocket from 'ws';
import { Sluice } from '@sluice/sdk';

// Node 20 has no global WebSocket: hand the client the `ws` package's class.
const sluice = new Sluice({
  baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080',
  apiKey: process.env['SLUICE_API_KEY'],
  transport: 'websocket',
  WebSocket,
});

const session = await sluice.sessions.create();
// Two runs share the session's one socket, multiplexed by execution id (they run one at a time).
const [a, b] = await Promise.all([
  session.run('print("first")', { mode: 'process' }),
  session.run('print("second")', { mode: 'process' }),
]);
process.stdout.write(a.stdout + b.stdout);
await session.delete();
sluice.close(); // closes the sockets (they also close by themselves when idle)
