/**
 * `GET /api/sessions/{id}/ws`: the WebSocket transport (docs/websocket.md).
 *
 * Upgrades are taken from the HTTP server before Fastify's hooks run, because a browser cannot
 * read the status of a refused upgrade nor set an `Authorization` header: authentication accepts
 * the key in a subprotocol too, and every refusal is a close code the page can read (`WSCloseCode`
 * UNAUTHORIZED, NO_SESSION, TOO_MANY_SOCKETS, GOING_AWAY). Upgrade requests for anything else (another path, `Upgrade: h2c`) go through
 * Fastify's router as plain requests. Without an upgrade, the path answers INVALID_REQUEST.
 * When the server shuts down, every socket gets what its followed logs hold, then GOING_AWAY.
 */
import { IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { validateSessionID, WSCloseCode, type ErrorBody } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { KeyRing } from '../auth/api-keys.js';
import { closeReason } from '../ws/close-reason.js';
import { SocketRegistry, socketCaps } from '../ws/socket-registry.js';
import { authFailureReason, selectProtocol, upgradeCredentials } from '../ws/ws-auth.js';
import { WSConnection, type SessionIncarnation } from '../ws/ws-connection.js';
import type { ServerContext } from './context.js';

/** A message may be this much larger than a run request body (its own fields, JSON escapes). */
const MESSAGE_HEADROOM_BYTES = 1024 * 1024;
/** How often open sockets check that their session still exists. */
const SESSION_CHECK_MS = 1000;
/** On shutdown, how long sockets may take to send what their followed logs still hold. */
const SHUTDOWN_FLUSH_MS = 1000;
/** How long a refused socket waits for the client's close frame. */
const REFUSED_CLOSE_MS = 2000;

const WS_PATH = /^\/api\/sessions\/([^/]+)\/ws$/;

export function wsRoutes(app: FastifyInstance, ctx: ServerContext, keys: KeyRing): void {
  const caps = socketCaps(ctx.config.maxConnections);
  const registry = new SocketRegistry<WSConnection>(caps.maxSockets, caps.maxSocketsPerTenant);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MESSAGE_HEADROOM_BYTES + ctx.config.bodyLimitBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => selectProtocol(offered),
  });

  /**
   * Who is asking and which incarnation of the session they asked for, found before the
   * handshake: the lookup may be I/O, and until the socket is upgraded its bytes wait in it,
   * so no message can arrive before the connection listens.
   */
  const admit = async (req: IncomingMessage, rawSessionID: string): Promise<Admission> => {
    if (!keys.enabled) return { owner: null, log: app.log, incarnation: await lookupSession(ctx, null, rawSessionID) };
    const creds = upgradeCredentials(req.headers);
    const tenant = creds.source === 'none' ? null : keys.authenticate(creds.authorization);
    if (tenant === null || 'reason' in tenant) return { refused: authFailureReason(creds, tenant?.message ?? '') };
    return { owner: tenant.id, log: app.log.child({ tenant: tenant.label }), incarnation: await lookupSession(ctx, tenant.id, rawSessionID) };
  };

  const accept = (ws: WebSocket, raw: Duplex, rawSessionID: string, admission: Admission): void => {
    ws.on('error', (err) => app.log.debug({ err }, 'websocket error'));
    if (ctx.shutdown.aborted) return refuse(ws, WSCloseCode.GOING_AWAY, 'the server is shutting down');
    if ('refused' in admission) return refuse(ws, WSCloseCode.UNAUTHORIZED, admission.refused);
    const { owner, log, incarnation } = admission;
    if (incarnation === null) return refuse(ws, WSCloseCode.NO_SESSION, `no session with id ${JSON.stringify(rawSessionID)}; create it first (POST /api/sessions)`);
    const problem = registry.admissionProblem(owner);
    if (problem !== null) return refuse(ws, WSCloseCode.TOO_MANY_SOCKETS, problem);
    const conn = new WSConnection(ws, raw, { ctx, owner, session: incarnation, log });
    registry.add(conn);
    void conn.closed.then(() => registry.delete(conn));
  };

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node removed its own listeners from the socket when it handed over the upgrade.
    socket.on('error', () => socket.destroy());
    const sessionID = webSocketSessionID(req);
    if (sessionID === null) return routeAsHTTP(app, req, socket, head);
    void admit(req, sessionID).then(
      (admission) => wss.handleUpgrade(req, socket, head, (ws) => accept(ws, socket, sessionID, admission)),
      (err: unknown) => {
        app.log.error({ err }, 'websocket upgrade failed');
        socket.destroy();
      },
    );
  });

  app.get('/api/sessions/:id/ws', async () => {
    throw new ApiError(
      'INVALID_REQUEST',
      'this endpoint is a WebSocket: expected an upgrade request (Connection: Upgrade, Upgrade: websocket); see docs/websocket.md',
    );
  });

  const sweeper = setInterval(() => {
    for (const conn of registry.all()) conn.checkSession();
  }, SESSION_CHECK_MS);
  sweeper.unref();

  // Fired after every execution was stopped, so the followed logs end in their `done`.
  ctx.shutdown.addEventListener(
    'abort',
    () => {
      clearInterval(sweeper);
      for (const conn of registry.all()) void conn.shut(WSCloseCode.GOING_AWAY, 'the server is shutting down', SHUTDOWN_FLUSH_MS);
    },
    { once: true },
  );
}

/** Who may open a socket (with the session's incarnation, null when it does not exist), or why not. */
type Admission = { owner: string | null; log: FastifyBaseLogger; incarnation: SessionIncarnation | null } | { refused: string };

/** The session a socket is for, or null (a bad id, a missing session, another tenant's). */
async function lookupSession(ctx: ServerContext, owner: string | null, rawID: string): Promise<SessionIncarnation | null> {
  let id: string;
  try {
    id = decodeURIComponent(rawID);
  } catch {
    return null;
  }
  if (!validateSessionID(id).ok) return null;
  const incarnation = await ctx.backend.incarnation(owner, id);
  return incarnation === null ? null : { id, incarnation };
}

/** The raw session id of a WebSocket upgrade to `GET /api/sessions/{id}/ws`; null for any other request. */
function webSocketSessionID(req: IncomingMessage): string | null {
  if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return null;
  const path = (req.url ?? '').split('?')[0] ?? '';
  return WS_PATH.exec(path)?.[1] ?? null;
}

/** Accepts the upgrade only to close it at once with a code that says why. */
function refuse(ws: WebSocket, code: WSCloseCode, reason: string): void {
  ws.close(code, closeReason(reason));
  setTimeout(() => ws.terminate(), REFUSED_CLOSE_MS).unref();
}

/**
 * Answers an upgrade request that is not ours as the plain HTTP request it also is (curl
 * `--http2` asks for `Upgrade: h2c` on every request), then closes the connection. Node handed
 * the socket over with the request already ended, so the request is rebuilt and its
 * `Content-Length` body fed to it from the socket (a chunked body is refused: nothing would
 * decode it).
 */
function routeAsHTTP(app: FastifyInstance, upgrade: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (upgrade.headers['transfer-encoding'] !== undefined) {
    const body = JSON.stringify({
      error: { code: 'INVALID_REQUEST', message: 'Transfer-Encoding: a request with an Upgrade header must send its body with Content-Length, or drop the Upgrade header' },
    } satisfies ErrorBody);
    socket.end(
      `HTTP/1.1 400 ${STATUS_CODES[400] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  const req = new IncomingMessage(socket as Socket);
  req.method = upgrade.method ?? 'GET';
  req.url = upgrade.url ?? '/';
  req.headers = upgrade.headers;
  req.rawHeaders = upgrade.rawHeaders;
  req.httpVersion = upgrade.httpVersion;
  req.httpVersionMajor = upgrade.httpVersionMajor;
  req.httpVersionMinor = upgrade.httpVersionMinor;
  let remaining = Number(upgrade.headers['content-length'] ?? 0) || 0;
  const feed = (chunk: Buffer): void => {
    const part = chunk.subarray(0, remaining);
    remaining -= part.length;
    // Backpressure as with Node's own parser: the request's _read() resumes the socket.
    if (part.length > 0 && !req.push(part)) socket.pause();
    if (remaining === 0) {
      socket.off('data', feed);
      req.complete = true;
      req.push(null);
    }
  };
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    socket.off('data', feed);
    res.detachSocket(socket as Socket);
    socket.end();
  });
  socket.once('close', () => socket.off('data', feed));
  feed(head);
  if (remaining > 0) socket.on('data', feed);
  app.routing(req, res);
}
