/** What every resource of one client shares: its HTTP client, transport settings and sockets. */
import { ConnectionError } from '../errors.js';
import type { WebSocketConstructor } from '../web-socket.js';
import type { ReconnectPolicy } from './backoff.js';
import type { HTTPClient } from './http-client.js';
import type { WSQueueLimits } from './ws-execution-source.js';

/** How a stream travels: Server-Sent Events over HTTP, or the session's shared WebSocket. */
export type Transport = 'sse' | 'websocket';

export const TRANSPORTS = ['sse', 'websocket'] as const satisfies readonly Transport[];

export interface ClientContext {
  http: HTTPClient;
  transport: Transport;
  reconnect: ReconnectPolicy;
  heartbeatTimeoutMs: number;
  commandTimeoutMs: number;
  WebSocket: WebSocketConstructor | undefined;
  ws: { idleTimeoutMs: number; pingIntervalMs: number; queue: WSQueueLimits };
}

/** The WebSocket class to use, or a TypeError that says what to pass. */
export function requireWebSocket(ctx: ClientContext): WebSocketConstructor {
  if (ctx.WebSocket) return ctx.WebSocket;
  throw new TypeError(
    'transport "websocket" needs a WebSocket class, and this runtime has no global WebSocket (Node 20 has none by default). ' +
      'Pass one: new Sluice({ baseURL, WebSocket }) with `import WebSocket from "ws"`, or use transport "sse".',
  );
}

/** Checks a transport option where it enters. */
export function checkTransport(value: unknown, option: string): Transport {
  if (value === 'sse' || value === 'websocket') return value;
  throw new TypeError(`${option}: expected "sse" or "websocket", got ${JSON.stringify(value)}`);
}

/** The `ws(s)://` URL of a session's socket. */
export function webSocketURL(baseURL: string, sessionID: string): string {
  const u = new URL(`${baseURL}/api/sessions/${encodeURIComponent(sessionID)}/ws`);
  if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol === 'http:') u.protocol = 'ws:';
  else throw new ConnectionError(`cannot open a WebSocket to ${baseURL}: expected an http: or https: baseURL`);
  return u.toString();
}
