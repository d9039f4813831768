/**
 * What /mcp does around the SDK's transport for its SSE streams (mcp-routes.ts): resumes it
 * answers itself, and keeping the Sluice session alive while a stream is open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { assertNever } from '@sluice/protocol';
import type { McpEventStore } from './mcp-event-store.js';

/**
 * Answers a `GET /mcp` with `Last-Event-ID` when the SDK would not do it well; returns false to
 * leave the request to the transport. An id of no stream the session holds or remembers is 400
 * (the SDK would say 500). A stream whose response was stored gets what it missed and then
 * ends: the SDK would keep such a resumed stream open for ever, since nothing is left to close
 * it. A stream still in use goes to the transport, which replays and then continues it live.
 */
export async function answerResume(store: McpEventStore, req: IncomingMessage, res: ServerResponse, mcpSessionID: string): Promise<boolean> {
  const lastEventID = req.headers['last-event-id'];
  if (req.method !== 'GET' || typeof lastEventID !== 'string' || lastEventID === '') return false;
  // The transport's own refusals (406, 400) come first, as it words them.
  const version = req.headers['mcp-protocol-version'];
  if (!req.headers.accept?.includes('text/event-stream') || (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return false;
  const resume = store.resumeOf(lastEventID);
  switch (resume.kind) {
    case 'open':
      return false;
    case 'unknown':
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: `Bad Request: Last-Event-ID ${JSON.stringify(lastEventID)} names no stream of this session` }, id: null }),
      );
      return true;
    case 'finished':
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no', 'mcp-session-id': mcpSessionID });
      await store.replayEventsAfter(lastEventID, { send: (id, message) => writeEvent(res, id, message) }).catch(() => {});
      res.end();
      return true;
    default:
      return assertNever(resume, 'MCP resume');
  }
}

/**
 * Before a `GET /mcp` that opens the session's stream for server messages (no Last-Event-ID):
 * the client opens one only when it lost the one it had, so close that one. The SDK would
 * refuse the new one (409) for as long as the old connection seems alive, which after a
 * half-open cut (the client's socket gone, the server's not) lasts until TCP gives up.
 */
export function replaceLostGetStream(transport: StreamableHTTPServerTransport, req: IncomingMessage): void {
  if (req.method === 'GET' && req.headers['last-event-id'] === undefined && req.headers.accept?.includes('text/event-stream')) transport.closeStandaloneSSEStream();
}

/** Writes one SSE event as the SDK's transport does, waiting while the socket is full (or until it closes). */
async function writeEvent(res: ServerResponse, id: string, message: JSONRPCMessage): Promise<void> {
  if (res.destroyed) return;
  if (res.write(`event: message\nid: ${id}\ndata: ${JSON.stringify(message)}\n\n`)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

