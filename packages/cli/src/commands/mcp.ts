/**
 * `sluice mcp`: an MCP server on stdio for local clients (Claude Desktop, Cursor, VS Code) that
 * forwards every JSON-RPC message, both ways, to a running server's `/mcp` (Streamable HTTP),
 * both ends being the official SDK's transports: progress, log messages, cancellation and
 * stream resumption work through it as they do over HTTP. stdout carries JSON-RPC only;
 * diagnostics go to stderr. When the server no longer knows its session (404: it restarted, or
 * the session ended) it starts a new one, as MCP requires of a client. When stdin closes it
 * waits (at most 10 s) for the answers still due, then ends, deleting its MCP session.
 */
import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { serverURL, withServerOption, type ConnectFlags } from '../internal/connect.js';
import { usageError } from '../internal/cli-error.js';
import { ExitCode } from '../internal/exit-codes.js';
import { reportError } from '../internal/report-error.js';

/** How long the bridge waits, once stdin has closed, for the answers to requests still running. */
const CLOSE_WAIT_MS = 10_000;
/** How long it waits for the answer to a request of its own (initialize, replayed for a new session). */
const OWN_REQUEST_TIMEOUT_MS = 30_000;

interface McpFlags extends ConnectFlags {
  apiKey?: string;
}

export function mcpCommand(program: Command): void {
  withServerOption(program.command('mcp').description('speak MCP on stdin/stdout, forwarding to a running server (a desktop client\'s code tool)'))
    .option('--api-key <key>', 'API key (default: $SLUICE_API_KEY, which is better: a flag shows in ps)')
    .action(async (flags: McpFlags) => {
      try {
        process.exitCode = await bridge(flags);
      } catch (err: unknown) {
        process.exitCode = reportError(err);
      }
    });
}

/** Runs until stdin closes; resolves with the exit code. */
async function bridge(flags: McpFlags): Promise<number> {
  const base = serverURL(flags);
  // Under the server's URL, path included (a server behind a proxy's prefix).
  const endpoint = URL.canParse(base) ? new URL(`${base.replace(/\/+$/, '')}/mcp`) : null;
  if (endpoint === null || (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')) {
    throw usageError(`--url (or SLUICE_URL): expected an http(s) URL, got ${JSON.stringify(base)}`);
  }
  const apiKey = flags.apiKey ?? (process.env['SLUICE_API_KEY'] || undefined);
  const log = (text: string): void => void process.stderr.write(`sluice mcp: ${text}\n`);
  const stdio = new StdioServerTransport();
  const toClient = (message: JSONRPCMessage): void => {
    stdio.send(message).catch((err: Error) => log(`could not write to stdout: ${err.message}`));
  };

  /** The client's initialize and initialized messages, and its logging level: replayed to start a new session. */
  let initialize: JSONRPCRequest | undefined;
  let initialized: JSONRPCNotification | undefined;
  let setLevel: JSONRPCRequest | undefined;
  /** The client's initialize request's id until answered: its answer names the protocol version every later request must carry. */
  let initializeID: RequestId | undefined;
  /** The client's requests not answered yet, with the connection that accepted each (null: not posted yet). */
  const pending = new Map<RequestId, { request: JSONRPCRequest; on: StreamableHTTPClientTransport | null }>();
  /** Messages being posted. */
  const posting = new Set<Promise<void>>();
  /** The bridge's own requests (replayed while starting a new session): their answers are not the client's. */
  const own = new Map<RequestId, (message: JSONRPCMessage) => void>();
  let ownSeq = 0;
  let changed: (() => void) | null = null;
  const settle = (): void => {
    changed?.();
  };

  const connect = (): StreamableHTTPClientTransport => {
    const t = new StreamableHTTPClientTransport(endpoint, {
      requestInit: apiKey === undefined ? {} : { headers: { Authorization: `Bearer ${apiKey}` } },
      // A cut stream is resumed (Last-Event-ID) a few times before the request is given up.
      reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 5000, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
    });
    t.onmessage = (message) => {
      if ((isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && message.id !== undefined) {
        const mine = own.get(message.id);
        if (mine) return mine(message);
        if (message.id === initializeID && isJSONRPCResultResponse(message)) {
          const version = message.result['protocolVersion'];
          if (typeof version === 'string') t.setProtocolVersion(version);
          initializeID = undefined;
        }
        pending.delete(message.id);
        settle();
      }
      toClient(message);
    };
    // Every failure of the HTTP side comes here (a failed send too, before it rejects); a lost session is said once, by renew.
    t.onerror = (err) => {
      if (!isSessionGone(err)) log(`${endpoint.href}: ${err.message}`);
    };
    return t;
  };
  let http = connect();
  let renewing: Promise<void> | null = null;

  /** Sends one of the bridge's own requests on `t` and waits for its answer. */
  const ask = async (t: StreamableHTTPClientTransport, request: JSONRPCRequest): Promise<JSONRPCMessage> => {
    const id = `sluice-mcp-${++ownSeq}`;
    const answer = new Promise<JSONRPCMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${request.method} in ${OWN_REQUEST_TIMEOUT_MS / 1000} s`)), OWN_REQUEST_TIMEOUT_MS);
      own.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    try {
      await t.send({ ...request, id });
      return await answer;
    } finally {
      own.delete(id);
    }
  };

  /**
   * The server no longer knows the session (404: it restarted, or the session ended): as MCP
   * requires, start a new one, replaying the client's initialize, initialized and logging level.
   * Requests sent on the lost session are answered with an error: their outcome is unknown.
   */
  const renew = (lost: StreamableHTTPClientTransport): Promise<void> => {
    if (http !== lost) return renewing ?? Promise.resolve();
    const init = initialize;
    if (init === undefined) return Promise.reject(new Error('the session is gone and the client never initialized one'));
    const fresh = connect();
    http = fresh;
    renewing = (async () => {
      log(`${endpoint.href}: the server no longer knows session ${lost.sessionId ?? '?'} (it restarted, or the session ended): starting a new one`);
      await lost.close().catch(() => {});
      // Those the lost session had accepted are lost with it; those it refused (404) are sent again.
      for (const [id, { request, on }] of pending) {
        if (on !== lost) continue;
        pending.delete(id);
        toClient({ jsonrpc: '2.0', id, error: { code: -32000, message: `sluice mcp: the MCP session ended (the server restarted, or the session expired) before ${request.method} was answered; its outcome is unknown` } });
      }
      settle();
      await fresh.start();
      const answer = await ask(fresh, init);
      if (!isJSONRPCResultResponse(answer)) throw new Error(`initialize was refused: ${JSON.stringify(answer)}`);
      const version = answer.result['protocolVersion'];
      if (typeof version === 'string') fresh.setProtocolVersion(version);
      await fresh.send(initialized ?? { jsonrpc: '2.0', method: 'notifications/initialized' });
      if (setLevel !== undefined) await ask(fresh, setLevel);
      const instructions = answer.result['instructions'];
      const session = typeof instructions === 'string' ? /Sluice session (\S+?)[ ;.(]/.exec(instructions)?.[1] : undefined;
      const data = `The MCP session was lost (the server restarted, or it expired) and a new one started${session ? ` (Sluice session ${session})` : ''}: variables, imports and files of the old one are gone.`;
      log(data);
      toClient({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'warning', logger: 'sluice', data } });
    })();
    const done = renewing;
    // A failed start leaves `fresh` without a session: the next message tries again.
    done.then(
      () => {
        if (renewing === done) renewing = null;
      },
      () => {
        if (renewing === done) renewing = null;
      },
    );
    return done;
  };

  /** Posts a message of the client; a request whose session the server lost is sent again in a new one. */
  const forward = async (message: JSONRPCMessage): Promise<void> => {
    if (renewing) await renewing.catch(() => {});
    // A new session that failed to start: try again.
    if (http.sessionId === undefined && initialize !== undefined && !(isJSONRPCRequest(message) && message.method === 'initialize')) await renew(http);
    const post = async (on: StreamableHTTPClientTransport): Promise<void> => {
      await on.send(message);
      const p = isJSONRPCRequest(message) ? pending.get(message.id) : undefined;
      if (p) p.on = on;
    };
    const first = http;
    try {
      await post(first);
    } catch (err: unknown) {
      if (!isSessionGone(err) || initialize === undefined) throw err;
      await renew(first);
      await post(http);
    }
  };

  stdio.onerror = (err) => log(`stdin: ${err.message}`);
  stdio.onmessage = (message) => {
    if (isJSONRPCRequest(message)) {
      if (message.method === 'initialize') {
        initialize = message;
        initializeID = message.id;
      } else if (message.method === 'logging/setLevel') setLevel = message;
      pending.set(message.id, { request: message, on: null });
    } else if (isJSONRPCNotification(message)) {
      if (message.method === 'notifications/initialized') initialized = message;
      // A cancelled request gets no answer (MCP's rule): nothing to wait for.
      const cancelled = message.method === 'notifications/cancelled' ? message.params?.['requestId'] : undefined;
      if (typeof cancelled === 'string' || typeof cancelled === 'number') pending.delete(cancelled);
    }
    const sent = forward(message).catch((err: Error) => {
      // A request the server never got is answered here, or the client would wait for ever.
      if (isJSONRPCRequest(message) && pending.delete(message.id)) {
        toClient({ jsonrpc: '2.0', id: message.id, error: { code: -32000, message: `sluice mcp: ${endpoint.href}: ${err.message}` } });
      }
    });
    posting.add(sent);
    void sent.finally(() => {
      posting.delete(sent);
      settle();
    });
  };

  const closed = new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    stdio.onclose = resolve;
  });
  await http.start();
  await stdio.start();
  await closed;
  // stdin closing is the end of the client's messages, not of their answers: wait (bounded) for those.
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while ((pending.size > 0 || posting.size > 0) && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadline - Date.now());
      changed = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    changed = null;
  }
  if (pending.size > 0) log(`stdin closed; gave up waiting after ${CLOSE_WAIT_MS / 1000} s for the answer to ${pending.size} request(s)`);
  // The server deletes the session (and its workspace) now rather than at its idle expiry.
  if (http.sessionId !== undefined) await http.terminateSession().catch((err: Error) => log(`could not end the session: ${err.message}`));
  await http.close();
  await stdio.close();
  return ExitCode.OK;
}

/** True for the server's answer to a session it does not know (404), which MCP says to answer with a new session. */
function isSessionGone(err: unknown): boolean {
  return err instanceof StreamableHTTPError && err.code === 404;
}
