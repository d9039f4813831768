/**
 * `POST/GET/DELETE /mcp`: the Model Context Protocol over Streamable HTTP (docs/mcp.md), on the
 * official SDK's transport. Each MCP session is one transport and one `Server`
 * (mcp/mcp-tools.ts) over a Sluice session of the caller's tenant (`mcp-<random>`), created on
 * `initialize` through the backend (its admission caps apply) and deleted with it:
 * DELETE /mcp, the Sluice session's idle expiry or deletion, or the server closing. Messages
 * of each stream are kept in a bounded event log for resumption (mcp/mcp-event-store.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { ErrorBody } from '@sluice/protocol';
import { isLoopbackHost } from '../auth/exposure.js';
import { McpEventStore } from '../mcp/mcp-event-store.js';
import { answerResume, replaceLostGetStream } from '../mcp/mcp-streams.js';
import { createMcpServer } from '../mcp/mcp-tools.js';
import { randomID } from '../random-id.js';
import { ownerOf } from './authenticate.js';
import type { ServerContext } from './context.js';
import { packageVersion } from './openapi-routes.js';

/** Memory of one MCP stream's event log, bytes (results may carry images). */
const MAX_STREAM_BYTES = 16 * 1024 * 1024;
/** Streams (one per POST with requests, plus the GET stream) whose messages a session keeps for resumption. */
const MAX_STREAMS = 32;
/** Milliseconds a client waits before resuming a cut stream (the SSE `retry` of each stream's first event). */
const RETRY_MS = 500;

interface McpSession {
  id: string;
  owner: string | null;
  sessionID: string;
  transport: StreamableHTTPServerTransport;
  server: Server;
  store: McpEventStore;
  closing: Promise<void> | null;
}

/** The MCP sessions of the server, by `Mcp-Session-Id`. */
export class McpSessions {
  private readonly byID = new Map<string, McpSession>();
  /** By Sluice session (owner and id): its expiry or deletion ends the MCP session. */
  private readonly bySession = new Map<string, McpSession>();

  constructor(private readonly ctx: ServerContext) {
    ctx.backend.onSessionGone((owner, id) => {
      const m = this.bySession.get(sessionKey(owner, id));
      if (m) void this.end(m, false);
    });
  }

  get size(): number {
    return this.byID.size;
  }

  /** Answers one request to /mcp. */
  async handle(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host, this.ctx.authEnabled)) {
      const body: ErrorBody = {
        error: { code: 'FORBIDDEN', message: `Origin: ${JSON.stringify(origin)} is not this server's origin; /mcp answers only its own origin (DNS-rebinding protection)` },
      };
      return void reply.code(403).send(body);
    }
    const owner = ownerOf(req);
    const header = req.headers['mcp-session-id'];
    let mcp: McpSession | undefined;
    if (header === undefined) {
      if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
        return void reply.code(400).send(jsonRPCError(-32000, 'Bad Request: Mcp-Session-Id header is required'));
      }
      mcp = await this.open(owner);
    } else {
      mcp = typeof header === 'string' ? this.byID.get(header) : undefined;
      // Another tenant's session is answered like a missing one.
      if (!mcp || mcp.owner !== owner || mcp.closing) return void reply.code(404).send(jsonRPCError(-32001, 'Session not found'));
      this.ctx.backend.touch(owner, mcp.sessionID);
    }
    reply.hijack();
    // An open stream (a request's, the GET one) keeps the Sluice session from expiring idle.
    const release = this.ctx.backend.attach(owner, mcp.sessionID);
    try {
      if (header !== undefined && (await answerResume(mcp.store, req.raw, reply.raw, mcp.id))) return;
      replaceLostGetStream(mcp.transport, req.raw);
      // The app's parser has read the body already; a POST without one is a parse error, not a hang.
      await mcp.transport.handleRequest(req.raw, reply.raw, req.method === 'POST' ? (req.body ?? null) : undefined);
    } finally {
      release();
    }
    // An initialize the transport refused (a wrong Accept header…) leaves no session behind.
    if (header === undefined && mcp.transport.sessionId === undefined) await this.end(mcp, true);
  }

  /** Ends every MCP session (the server is closing; their Sluice sessions go with the manager's). */
  async close(): Promise<void> {
    await Promise.all([...this.byID.values(), ...this.bySession.values()].map((m) => this.end(m, false)));
  }

  private async open(owner: string | null): Promise<McpSession> {
    // The backend's caps apply: a tenant's MCP sessions count among its sessions.
    const session = await this.ctx.backend.createSession(owner, { id: `mcp-${randomID()}` });
    const sessionID = session.id;
    const id = randomID();
    const store = new McpEventStore({
      maxStreamBytes: MAX_STREAM_BYTES,
      maxStreams: MAX_STREAMS,
      track: (log, onRelease) => this.ctx.budgetLog(log, onRelease),
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      eventStore: store,
      retryInterval: RETRY_MS,
      onsessioninitialized: () => {
        this.byID.set(id, mcp);
      },
    });
    const server = createMcpServer({
      sessionID,
      language: session.language,
      files: this.ctx.backend.files(owner, sessionID),
      submit: (request) => this.ctx.backend.submitRun(owner, sessionID, request),
      restart: async () => (await this.ctx.backend.restartSession(owner, sessionID)).restarted,
      killGraceMs: this.ctx.config.killGraceMs,
      version: packageVersion(),
    });
    const mcp: McpSession = { id, owner, sessionID, transport, server, store, closing: null };
    this.bySession.set(sessionKey(owner, sessionID), mcp);
    // DELETE /mcp closes the transport: the session ends with it.
    transport.onclose = () => void this.end(mcp, true);
    await server.connect(transport);
    return mcp;
  }

  /** Closes the transport and the server, releases the logs, and deletes the Sluice session when `deleteSession`. */
  private end(m: McpSession, deleteSession: boolean): Promise<void> {
    m.closing ??= (async () => {
      // Assigned before any of it runs: closing the server below calls the transport's onclose,
      // which calls end() again (to delete the session), and must get this one.
      await Promise.resolve();
      this.byID.delete(m.id);
      if (this.bySession.get(sessionKey(m.owner, m.sessionID)) === m) this.bySession.delete(sessionKey(m.owner, m.sessionID));
      // Closing the server aborts its running requests: their runs are cancelled (process trees killed).
      await m.server.close().catch(() => {});
      m.store.close();
      if (deleteSession) await this.ctx.backend.deleteSession(m.owner, m.sessionID).catch(() => {});
    })();
    return m.closing;
  }
}

export function mcpRoutes(app: FastifyInstance, mcp: McpSessions): void {
  const handle = (req: FastifyRequest, reply: FastifyReply): Promise<void> => mcp.handle(req, reply);
  app.post('/mcp', handle);
  app.get('/mcp', handle);
  app.delete('/mcp', handle);
}

/** MCP sessions are found by their Sluice session's owner and id (two tenants may share an id). */
function sessionKey(owner: string | null, sessionID: string): string {
  return `${owner ?? ''}\u0000${sessionID}`;
}

/** The SDK's error body for transport-level refusals (same shape as its own 400 and 404). */
function jsonRPCError(code: number, message: string): { jsonrpc: '2.0'; error: { code: number; message: string }; id: null } {
  return { jsonrpc: '2.0', error: { code, message }, id: null };
}

/**
 * True when a browser's Origin is this server's: its host:port is the request's Host. Without
 * API keys the server listens on loopback only, and a page of another name resolving to it (DNS
 * rebinding) sends its own name in both headers: so then the name must be a loopback one too.
 */
function sameOrigin(origin: string, host: string | undefined, authEnabled: boolean): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (host === undefined || url.host !== host) return false;
  return authEnabled || isLoopbackHost(url.hostname);
}
